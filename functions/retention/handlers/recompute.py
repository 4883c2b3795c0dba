"""Workflow step of the policy-change recompute (started by `RetentionPolicyChanged`; the state machine loops
while `done` is false).

Input: the event itself on the first step (EventBridge's envelope: the kinds come from the periods it
shortened), then the previous step's output:
`{"tenant", "policy_version", "kinds": [...], "kind_index", "cursor", "counts": {...}, "examined": {...}}`.
Output: the same, advanced by one page of the current kind's due index, with `"done"`; the step that reaches
done writes the report `retention/policy-changes/<tenant>/<policy_version>.json` to the export bucket and audits.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.retention.dal.policy import DynamoPolicyStore, PolicyStore
from functions.retention.dal.recompute import DueStore, DynamoDueStore, ReportStore
from functions.retention.logic.policy import policy_of
from functions.retention.logic.recompute import finish_recompute, kinds_shortened, recompute_page
from functions.retention.models.events import RetentionPolicyChanged
from functions.retention.models.recompute_io import RecomputeState
from shared.audit import AuditLog, DynamoAuditLog
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class RecomputeSettings(BaseSettings):
    """The workflow step that recomputes the due dates a policy change shortens."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)


SAMPLE_EVENT = (
    "eventbridge_retention_policy_changed.json"  # events/: what this entry point receives (benchmarks, tests)
)

PAGE_SIZE = 100


def initial_state(event: dict[str, Any]) -> RecomputeState:
    """The state of a new recompute from the `RetentionPolicyChanged` event, or the state a step handed on."""
    if event.get("detail-type") == RetentionPolicyChanged.detail_type:
        changed = RetentionPolicyChanged.model_validate(event["detail"])
        return RecomputeState(
            tenant=changed.tenant,
            policy_version=changed.policy_version,
            kinds=kinds_shortened(changed.shortened),
        )
    return RecomputeState.model_validate(event)


def _reports(bucket: str) -> ReportStore:
    # Imported here: the S3 client is the heaviest to create, and only the step that finishes writes a report.
    from functions.retention.dal.reports import S3ReportStore

    return S3ReportStore(bucket)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    store: DueStore | None = None,
    policies: PolicyStore | None = None,
    reports: ReportStore | None = None,
    audit: AuditLog | None = None,
) -> dict[str, Any]:
    state = initial_state(event)
    if store is None or policies is None or reports is None or audit is None:
        settings = load_settings(RecomputeSettings)
        store = store or DynamoDueStore(settings.RETENTION_TABLE_NAME)
        policies = policies or DynamoPolicyStore(settings.RETENTION_TABLE_NAME)
        reports = reports or _reports(settings.EXPORT_BUCKET_NAME)
        audit = audit or DynamoAuditLog(settings.AUDIT_TABLE_NAME)
    logger.append_keys(tenant=state.tenant, policy_version=state.policy_version)
    if state.done:
        return state.model_dump(mode="json")
    if state.kind_index < len(state.kinds):
        kind = state.kinds[state.kind_index]
        page = recompute_page(
            state.tenant, kind, policy_of(policies, state.tenant), state.cursor, store=store, limit=PAGE_SIZE
        )
        state.counts[kind] = state.counts.get(kind, 0) + page.changed
        state.examined[kind] = state.examined.get(kind, 0) + page.examined
        metrics.add_metric(name="RetentionDueDatesShortened", unit="Count", value=page.changed)
        state = state.model_copy(update={"cursor": page.cursor, "kind_index": state.kind_index + (page.cursor is None)})
    if state.kind_index >= len(state.kinds):
        finish_recompute(
            state.tenant,
            state.policy_version,
            {kind.value: n for kind, n in state.counts.items()},
            {kind.value: n for kind, n in state.examined.items()},
            reports=reports,
            audit=audit,
        )
        state = state.model_copy(update={"done": True, "cursor": None})
    return state.model_dump(mode="json")
