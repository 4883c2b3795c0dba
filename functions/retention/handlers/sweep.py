"""Workflow steps of the daily retention sweep (infra/constructs/retention_sweep.py), one Lambda, by `step`:

- `{"step": "start", "input": {"dry_run": false}, "execution": "<execution name>"}` -> `{"tenants": [state...]}`;
- `{"step": "page", "state": {...}}` -> the state of the next page (`done` once every phase is through);
- `{"step": "report", "state": {...}}` -> the tenant's counts, after writing the run report to the export bucket.

Collaborators are optional arguments built lazily from SweepSettings, so tests pass fakes or moto clients.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.sweep import DynamoSweepStore, ReportStore, SweepStore
from functions.retention.logic.sweep import ExportPurger, SweepState, report_sweep, start_sweep, sweep_page
from functions.retention.models.events import SOURCE
from shared.audit import AuditLog, DynamoAuditLog
from shared.errors import BadRequest
from shared.events import EventPublisher, bus_publisher
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class SweepSettings(BaseSettings):
    """The environment of the daily sweep's workflow steps."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    RETENTION_KEYS_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)


SAMPLE_EVENT = "stepfunctions_retention_sweep_start.json"  # events/: the workflow's first task (benchmarks, tests)


def _exports(settings: SweepSettings) -> ExportPurger:
    """The archive bucket's subject-access exports (purged for forgotten people that have any)."""
    from functions.retention.dal.exports import S3ExportStore

    return S3ExportStore(settings.ARCHIVE_BUCKET_NAME)


def _reports(settings: SweepSettings) -> ReportStore:
    """The export bucket's run reports. Imported here: the S3 client is the heaviest to create, and only the
    report step needs it."""
    from functions.retention.dal.reports import S3ReportStore

    return S3ReportStore(settings.EXPORT_BUCKET_NAME)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    store: SweepStore | None = None,
    publisher: EventPublisher | None = None,
    audit: AuditLog | None = None,
    exports: ExportPurger | None = None,
    reports: ReportStore | None = None,
) -> dict[str, Any]:
    settings = load_settings(SweepSettings)
    store = store or DynamoSweepStore(settings.RETENTION_TABLE_NAME, keys_table=settings.RETENTION_KEYS_TABLE_NAME)
    step = event.get("step")
    if step == "start":
        given = event.get("input") or {}
        states = start_sweep(
            store=store, dry_run=bool(given.get("dry_run", False)), execution=event.get("execution") or None
        )
        logger.info("sweep started", extra={"tenants": len(states), "dry_run": bool(given.get("dry_run"))})
        return {"tenants": [state.model_dump(mode="json") for state in states]}
    state = SweepState.model_validate(event.get("state") or {})
    logger.append_keys(tenant=state.tenant, run_id=state.run_id)
    if step == "page":
        after = sweep_page(
            state,
            store=store,
            publisher=publisher or bus_publisher(settings.EVENT_BUS_NAME, SOURCE),
            audit=audit or DynamoAuditLog(settings.AUDIT_TABLE_NAME),
            exports=exports or _exports(settings),
        )
        metrics.add_metric(name="RetentionSweepPages", unit="Count", value=1)
        return after.model_dump(mode="json")
    if step == "report":
        summary = report_sweep(state, store=store, reports=reports or _reports(settings))
        logger.info("sweep reported", extra={"counts": summary["counts"], "held_skipped": summary["held_skipped"]})
        return summary
    raise BadRequest(f"unknown sweep step {step!r}: start, page or report")
