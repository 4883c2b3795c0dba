"""The records the ATS reports against its vacancies (integration clients, scope `ats/retention.write`,
idempotent on the ATS's ids), and reading them back (people, or integrations with a retention scope):

    PUT/GET /v1/vacancies/{vacancy_id}/applications/{application_id}
    PUT/GET /v1/vacancies/{vacancy_id}/candidates/{person_id}
    PUT/GET /v1/vacancies/{vacancy_id}/registrations/{person_id}

Every call is audited; another tenant's record is a 404. Personal data in a body is sealed under the person's
own key at once; no response carries it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.adapters import retention_publisher, tenant_keys
from functions.retention.dal.records import DynamoRecordStore
from functions.retention.dal.vault import PersonVault
from functions.retention.logic.applications import ApplicationResult, get_application, submit_application
from functions.retention.logic.candidates import CandidateResult, get_candidate, report_candidate
from functions.retention.logic.fingerprints import ReportedPerson
from functions.retention.logic.registrations import get_registration, register
from functions.retention.models.entities import CandidateStatus
from functions.retention.models.people import Candidate, Registration
from functions.retention.models.records_io import (
    ApplicationOutput,
    ApplicationSubmission,
    CandidateOutput,
    CandidateReport,
    PersonInput,
    RegistrationOutput,
    RegistrationReport,
)
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class RecordsApiSettings(BaseSettings):
    """Applications, candidates and registrations: people's data sealed per person, fingerprints keyed."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    RETENTION_KEYS_TABLE_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)


app = build_resolver()


_APPLICATION = "/v1/vacancies/<vacancy_id>/applications/<application_id>"
_CANDIDATE = "/v1/vacancies/<vacancy_id>/candidates/<person_id>"
_REGISTRATION = "/v1/vacancies/<vacancy_id>/registrations/<person_id>"


def _settings() -> RecordsApiSettings:
    return load_settings(RecordsApiSettings)


def _store(settings: RecordsApiSettings) -> DynamoRecordStore:
    return DynamoRecordStore(settings.RETENTION_TABLE_NAME)


def _audit(settings: RecordsApiSettings) -> DynamoAuditLog:
    return DynamoAuditLog(settings.AUDIT_TABLE_NAME)


def _vault(settings: RecordsApiSettings) -> PersonVault:
    # One per request: a person's unwrapped key lives no longer than the request that needed it.
    return PersonVault(settings.RETENTION_KEYS_TABLE_NAME, settings.DATA_KEY_ARN)


def _person(person: PersonInput) -> ReportedPerson:
    return ReportedPerson(name=person.name, email=person.email, phone=person.phone, phone_region=person.phone_region)


def _created(status: bool, body: Any) -> Response[Any]:
    return Response(status_code=201 if status else 200, content_type=content_types.APPLICATION_JSON, body=body)


def _application_output(result: ApplicationResult) -> ApplicationOutput:
    app_ = result.application
    return ApplicationOutput(
        vacancy_id=app_.vacancy_id,
        application_id=app_.application_id,
        person_id=app_.person_id,
        submitted_at=app_.submitted_at,
        source=app_.source,
        stages=list(app_.stages),
        outcome=app_.outcome,
        duplicate=app_.duplicate,
        from_candidate=app_.from_candidate,
        under_legal_hold=bool(app_.holds),
        version=app_.version,
    )


def _candidate_output(candidate: Candidate) -> CandidateOutput:
    return CandidateOutput(
        vacancy_id=candidate.vacancy_id,
        person_id=candidate.person_id,
        status=candidate.status,
        matched_at=candidate.matched_at,
        invited_at=candidate.invited_at,
        applied_at=candidate.applied_at,
        application_id=candidate.application_id,
        candidate_due=candidate.candidate_due,
        under_legal_hold=bool(candidate.holds),
    )


def _reported_candidate_output(result: CandidateResult) -> CandidateOutput:
    if result.candidate is not None:
        return _candidate_output(result.candidate)
    return CandidateOutput(
        vacancy_id=result.vacancy_id, person_id=result.person_id, status=result.status, matched_at=None
    )


def _registration_output(registration: Registration) -> RegistrationOutput:
    return RegistrationOutput(
        vacancy_id=registration.vacancy_id,
        person_id=registration.person_id,
        registered_at=registration.registered_at,
        registration_due=registration.registration_due,
        under_legal_hold=bool(registration.holds),
    )


@app.put(
    _APPLICATION,
    summary="Submit an application",
    description=(
        "The ATS submits an application, keyed by its own vacancy and application ids. The first submission records "
        "the application and its person (their data sealed under their own key), checks the applicant's fingerprint "
        "against those stored for the vacancy (`duplicate`), and turns a candidate of the vacancy into an applicant. "
        "Later submissions of the same id change the stages and outcome only; an identical repeat changes nothing. "
        "Events: `ApplicationReceived`, and `DuplicateApplicationDetected` for a duplicate, published again on a "
        "repeat. 400: an id, a code, an email or a phone that cannot be one (naming the field); 404: no such vacancy; "
        "409: a removed or talent-pool vacancy, or an application id of another person. Machine clients only, with "
        "the scope `ats/retention.write`."
    ),
    responses={
        **ok_response(ApplicationOutput, "Submitted before: unchanged, or its stages and outcome updated"),
        201: {"description": "First submission", "content": {"application/json": {"model": ApplicationOutput}}},
        **error_responses(400, 401, 403, 404, 409, 500, 503),
    },
    tags=["retention"],
    security=SECURED,
)
def put_application(
    vacancy_id: str, application_id: str, submission: ApplicationSubmission
) -> Response[ApplicationOutput]:
    settings = _settings()
    request = request_context(app)
    result = submit_application(
        request.actor,
        vacancy_id,
        application_id,
        person_id=submission.person_id,
        person=_person(submission.person),
        submitted_at=submission.submitted_at,
        source=submission.source,
        stages=submission.stages,
        outcome=submission.outcome,
        store=_store(settings),
        vault=_vault(settings),
        keys=tenant_keys(settings.TENANT_SECRET_PREFIX),
        publisher=retention_publisher(settings.EVENT_BUS_NAME),
        audit=_audit(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    if result.created:
        metrics.add_metric(name="ApplicationsReceived", unit="Count", value=1)
        if result.application.duplicate:
            metrics.add_metric(name="DuplicateApplications", unit="Count", value=1)
    return _created(result.created, _application_output(result))


@app.get(
    _APPLICATION,
    summary="Read an application",
    description=(
        "One application of the caller's tenant: ids, source, stages, outcome and the duplicate flag, never the "
        "applicant's personal data. Another tenant's id answers 404. Audited."
    ),
    responses={**ok_response(ApplicationOutput, "The application"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def read_application(vacancy_id: str, application_id: str) -> ApplicationOutput:
    settings = _settings()
    request = request_context(app)
    result = get_application(
        request.actor,
        vacancy_id,
        application_id,
        store=_store(settings),
        audit=_audit(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _application_output(result)


@app.put(
    _CANDIDATE,
    summary="Report a candidate",
    description=(
        "A talent-pool member matched to the vacancy, as `suggested`, then `invited`; or `removed`, which deletes "
        "only the candidate's link to the vacancy (never the talent-pool registration) and publishes `RecordPurged`. "
        "A candidate only moves forward; `applied` is set by the person's application (400 here). The person must "
        "be known from a talent-pool registration (404). 409: a removed or talent-pool vacancy, a move backwards, "
        "or removing a candidate under a legal hold. Machine clients only, with the scope `ats/retention.write`."
    ),
    responses={
        **ok_response(CandidateOutput, "Unchanged, invited, or removed"),
        201: {"description": "New candidate", "content": {"application/json": {"model": CandidateOutput}}},
        **error_responses(400, 401, 403, 404, 409, 500, 503),
    },
    tags=["retention"],
    security=SECURED,
)
def put_candidate(vacancy_id: str, person_id: str, report: CandidateReport) -> Response[CandidateOutput]:
    settings = _settings()
    request = request_context(app)
    result = report_candidate(
        request.actor,
        vacancy_id,
        person_id,
        status=CandidateStatus(report.status.value),
        matched_at=report.matched_at,
        store=_store(settings),
        publisher=retention_publisher(settings.EVENT_BUS_NAME),
        audit=_audit(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _created(result.created, _reported_candidate_output(result))


@app.get(
    _CANDIDATE,
    summary="Read a candidate",
    description="One candidate of the caller's tenant; a removed one, or another tenant's, answers 404. Audited.",
    responses={**ok_response(CandidateOutput, "The candidate"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def read_candidate(vacancy_id: str, person_id: str) -> CandidateOutput:
    settings = _settings()
    request = request_context(app)
    candidate = get_candidate(
        request.actor,
        vacancy_id,
        person_id,
        store=_store(settings),
        audit=_audit(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _candidate_output(candidate)


@app.put(
    _REGISTRATION,
    summary="Register a person against a talent-pool vacancy",
    description=(
        "The person registers against a talent-pool vacancy (409 for any other vacancy, or a removed one; 404 for "
        "none). Creates or updates the person (their data sealed under their own key); the registration is kept "
        "until `registration_due`, the tenant's registration limit from `registered_at`. A repeat changes nothing "
        "but the person's data, if it differs. 400: an email or phone that cannot be one. Machine clients only, "
        "with the scope `ats/retention.write`."
    ),
    responses={
        **ok_response(RegistrationOutput, "Registered before"),
        201: {"description": "New registration", "content": {"application/json": {"model": RegistrationOutput}}},
        **error_responses(400, 401, 403, 404, 409, 500, 503),
    },
    tags=["retention"],
    security=SECURED,
)
def put_registration(vacancy_id: str, person_id: str, report: RegistrationReport) -> Response[RegistrationOutput]:
    settings = _settings()
    request = request_context(app)
    registration, created = register(
        request.actor,
        vacancy_id,
        person_id,
        registered_at=report.registered_at,
        person=_person(report.person),
        store=_store(settings),
        vault=_vault(settings),
        audit=_audit(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _created(created, _registration_output(registration))


@app.get(
    _REGISTRATION,
    summary="Read a talent-pool registration",
    description="One registration of the caller's tenant, without personal data; another tenant's is 404. Audited.",
    responses={**ok_response(RegistrationOutput, "The registration"), **error_responses(400, 401, 403, 404, 500, 503)},
    tags=["retention"],
    security=SECURED,
)
def read_registration(vacancy_id: str, person_id: str) -> RegistrationOutput:
    settings = _settings()
    request = request_context(app)
    registration = get_registration(
        request.actor,
        vacancy_id,
        person_id,
        store=_store(settings),
        audit=_audit(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _registration_output(registration)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
