"""Anomalous-access thresholds (issue 13 §7, docs/audit-alerts.md), compliance officers only
(`audit:alert-policy`): GET /v1/audit-alert-policy (the current one, or the defaults) and PUT (replace it, as a
new version). Every call is audited by the permission check. The audit API (functions/audit/handlers/api.py)
includes this router."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.audit.dal.alert_policy import DynamoAlertPolicyStore
from functions.audit.logic.alert_policy import get_alert_policy, put_alert_policy
from functions.audit.models.alert_policy import (
    AlertPolicyApiSettings,
    AlertPolicyInput,
    AlertPolicyOutput,
    StoredAlertPolicy,
)
from shared.audit import DynamoAuditLog
from shared.auth import actor_from_event
from shared.http import SECURED, RequestContext, error_responses, ok_response
from shared.observability import metrics
from shared.settings import load_settings

PATH = "/v1/audit-alert-policy"

router = APIGatewayRouter()


def _dependencies() -> tuple[DynamoAlertPolicyStore, DynamoAuditLog]:
    table = load_settings(AlertPolicyApiSettings).AUDIT_TABLE_NAME
    return DynamoAlertPolicyStore(table), DynamoAuditLog(table)


def _request() -> RequestContext:
    event = router.current_event
    return RequestContext(
        actor=actor_from_event(event.raw_event),
        request_id=event.request_context.request_id,
        source_ip=event.request_context.identity.source_ip,
    )


def _output(stored: StoredAlertPolicy) -> AlertPolicyOutput:
    return AlertPolicyOutput(
        tenant=stored.tenant,
        enabled=stored.policy.enabled,
        reads=stored.policy.reads,
        exports=stored.policy.exports,
        auth_failures=stored.policy.auth_failures,
        version=stored.version,
        is_default=stored.version == 0,
        updated_at=stored.updated_at,
        updated_by=stored.updated_by,
    )


@router.get(
    PATH,
    summary="Read the anomalous-access thresholds",
    description=(
        "The caller's tenant's thresholds for anomalous-access alerts (`AlertRaised`): reads and exports by one "
        "user or client, and refusals, each as a count in a window of minutes. Until a policy is set, the "
        "defaults (`is_default`, version 0). Compliance officers; audited."
    ),
    responses={**ok_response(AlertPolicyOutput, "The thresholds"), **error_responses(401, 403, 500, 503)},
    tags=["audit"],
    security=SECURED,
)
def get_audit_alert_policy() -> AlertPolicyOutput:
    store, audit = _dependencies()
    request = _request()
    stored = get_alert_policy(
        request.actor, store=store, audit=audit, request_id=request.request_id, source_ip=request.source_ip
    )
    return _output(stored)


@router.put(
    PATH,
    summary="Replace the anomalous-access thresholds",
    description=(
        "Replaces the caller's tenant's thresholds (all three), as a new version; the linker applies it within "
        "a minute. `limit` 1 to 1,000,000; `window_minutes` 1 to 1440 and a divisor of a day (400 otherwise); "
        "unknown fields are refused (422). 409 when another change landed meanwhile. Compliance officers; "
        "audited."
    ),
    responses={**ok_response(AlertPolicyOutput, "The new thresholds"), **error_responses(400, 401, 403, 409, 500, 503)},
    tags=["audit"],
    security=SECURED,
)
def put_audit_alert_policy(body: AlertPolicyInput) -> AlertPolicyOutput:
    store, audit = _dependencies()
    request = _request()
    stored = put_alert_policy(
        request.actor,
        body,
        store=store,
        audit=audit,
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    metrics.add_metric(name="AuditAlertPolicyChanged", unit="Count", value=1)
    return _output(stored)
