"""PUT /v1/vacancies/{vacancy_id}: the ATS reports a vacancy as it happens (integration clients, scope
`ats/retention.write`, idempotent on the ATS's id). GET /v1/vacancies/{vacancy_id}: read one back (people, or
integrations with a retention scope). Both audited; another tenant's vacancy is a 404."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.policy import DynamoPolicyStore
from functions.retention.dal.vacancies import DynamoVacancyStore
from functions.retention.logic.vacancies import get_vacancy, report_vacancy
from functions.retention.models.entities import Vacancy
from functions.retention.models.input import VacancyReport
from functions.retention.models.output import VacancyOutput
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

# Parameters are plain annotations (no `Path()`/`Body()` markers): Powertools then loads its validation machinery
# on the first request rather than at import. The id's form is checked by the use case (400 naming the rule).


class VacancyApiSettings(BaseSettings):
    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)


app = build_resolver()


def _output(vacancy: Vacancy) -> VacancyOutput:
    return VacancyOutput(
        vacancy_id=vacancy.vacancy_id,
        kind=vacancy.kind,
        status=vacancy.status,
        opened_at=vacancy.opened_at,
        closed_at=vacancy.closed_at,
        archived_at=vacancy.archived_at,
        removed_at=vacancy.removed_at,
        reported_at=vacancy.reported_at,
        version=vacancy.version,
        archive_due=vacancy.archive_due,
        removal_due=vacancy.removal_due,
        applicants_due=vacancy.applicants_due,
        holds=len(vacancy.holds),
    )


@app.put(
    "/v1/vacancies/<vacancy_id>",
    summary="Report a vacancy",
    description=(
        "The ATS reports a vacancy when it opens, closes or is archived, keyed by its own id. Repeating a report "
        "changes nothing; a vacancy never moves back to an earlier phase (409), and `removed` is set by the "
        "retention sweep only (400). The response shows the due date of the current phase under the tenant's "
        "retention policy. Machine clients only, with the scope `ats/retention.write`."
    ),
    responses={
        **ok_response(VacancyOutput, "Unchanged, or updated"),
        201: {"description": "Recorded for the first time", "content": {"application/json": {"model": VacancyOutput}}},
        **error_responses(400, 401, 403, 409, 500, 503),
    },
    tags=["retention"],
    security=SECURED,
)
def put_vacancy(vacancy_id: str, report: VacancyReport) -> Response[VacancyOutput]:
    settings = load_settings(VacancyApiSettings)
    request = request_context(app)
    vacancy, created = report_vacancy(
        request.actor,
        vacancy_id,
        kind=report.kind,
        status=report.status,
        dates={"opened_at": report.opened_at, "closed_at": report.closed_at, "archived_at": report.archived_at},
        store=DynamoVacancyStore(settings.RETENTION_TABLE_NAME),
        policies=DynamoPolicyStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    metrics.add_metric(name="VacanciesReported", unit="Count", value=1)
    return Response(
        status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=_output(vacancy)
    )


@app.get(
    "/v1/vacancies/<vacancy_id>",
    summary="Read a vacancy",
    description="One vacancy of the caller's tenant as last reported; another tenant's id answers 404. Audited.",
    responses={**ok_response(VacancyOutput, "The vacancy"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def read_vacancy(vacancy_id: str) -> VacancyOutput:
    settings = load_settings(VacancyApiSettings)
    request = request_context(app)
    vacancy = get_vacancy(
        request.actor,
        vacancy_id,
        store=DynamoVacancyStore(settings.RETENTION_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _output(vacancy)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
