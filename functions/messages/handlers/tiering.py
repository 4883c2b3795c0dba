"""Workflow steps of the daily message tiering (functions/messages/logic/tiers.py), one Lambda, by `step`:

- `{"step": "start", "execution": "<execution name>"}` -> `{"tenants": [state...]}`, one per tenant with a policy;
- `{"step": "page", "state": {...}}` -> the state of the next page (`done` once the tenant's three phases are
  through, with this execution's counts per phase).

Collaborators are optional arguments, built lazily from TieringSettings: the S3 client on the first archive call,
KMS and the tenant's keyed digests only when a deleted message has content to find the search terms of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.logic.tiers import TieringPorts, TieringState, start_tiering, tiering_page
from shared.errors import BadRequest
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    from functions.messages.logic.redaction import ContentTools

SAMPLE_EVENT = "stepfunctions_messages_tiering_start.json"  # events/: the workflow's first task (benchmarks)
# This page's counts -> the metric each is published as.
_METRICS = {
    "warm": "MessagesMovedWarm",
    "cold": "MessagesMovedCold",
    "deleted": "MessagesDeleted",
    "held_skipped": "MessageDeletionsHeld",
    "stale": "MessageTieringStale",
    "missing": "MessageArchiveMissing",
}


class TieringSettings(BaseSettings):
    """The environment of the daily tiering's workflow steps."""

    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)


class _Opener:
    """Opens sealed content, the KMS client created on the first message that has any."""

    def __init__(self, key_arn: str) -> None:
        self._key_arn = key_arn

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        from shared.crypto import FieldCipher

        return FieldCipher(self._key_arn).decrypt(tenant, "message", sealed, record=message_id, field=field_name)


class _Digests:
    """The blind index, built on the first message that has content."""

    def __init__(self, secret_prefix: str) -> None:
        self._prefix = secret_prefix
        self._index: Any = None

    def query(self, tenant: str, query: str) -> list[list[str]]:
        if self._index is None:
            from functions.messages.logic.blind_index import BlindIndex
            from shared.crypto import TenantKeys
            from shared.secrets import TenantSecrets

            self._index = BlindIndex(TenantKeys(TenantSecrets(self._prefix)))
        result: list[list[str]] = self._index.query(tenant, query)
        return result


def _tools(settings: TieringSettings) -> ContentTools:
    from functions.messages.dal.terms import DynamoTermStore
    from functions.messages.logic.redaction import ContentTools

    return ContentTools(
        opener=_Opener(settings.DATA_KEY_ARN),
        index=_Digests(settings.TENANT_SECRET_PREFIX),
        terms=DynamoTermStore(settings.MESSAGES_TABLE_NAME),
    )


def build_ports(settings: TieringSettings) -> TieringPorts:
    """The real adapters (each client created on its first call)."""
    from functions.messages.dal.archive import DynamoTierStore, S3MessageArchive
    from functions.messages.dal.holds import DynamoHoldStore
    from functions.messages.dal.messages import DynamoMessageStore
    from functions.messages.dal.policy import DynamoPolicyStore
    from shared.audit import DynamoAuditLog

    table = settings.MESSAGES_TABLE_NAME
    return TieringPorts(
        messages=DynamoMessageStore(table),
        tiers=DynamoTierStore(table),
        archive=S3MessageArchive(settings.ARCHIVE_BUCKET_NAME),
        policies=DynamoPolicyStore(table),
        holds=DynamoHoldStore(table),
        tools=_tools(settings),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
    )


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext, ports: TieringPorts | None = None) -> dict[str, Any]:
    settings = load_settings(TieringSettings)
    step = event.get("step")
    if step == "start":
        from functions.messages.dal.policy import DynamoPolicyStore

        policies = ports.policies if ports else DynamoPolicyStore(settings.MESSAGES_TABLE_NAME)
        states = start_tiering(policies=policies, execution=event.get("execution") or None)
        logger.info("message tiering started", extra={"tenants": len(states)})
        metrics.add_metric(name="MessageTieringTenants", unit="Count", value=len(states))
        return {"tenants": [state.model_dump(mode="json") for state in states]}
    if step == "page":
        state = TieringState.model_validate(event.get("state") or {})
        logger.append_keys(tenant=state.tenant, run_id=state.run_id)
        outcome = tiering_page(state, ports=ports or build_ports(settings))
        metrics.add_metric(name="MessageTieringPages", unit="Count", value=1)
        for name, value in outcome.counts.items():
            if name in _METRICS and value:
                metrics.add_metric(name=_METRICS[name], unit="Count", value=value)
        if outcome.state.done:
            logger.info("message tiering done", extra={"counts": outcome.state.counts})
        return outcome.state.model_dump(mode="json")
    raise BadRequest(f"unknown tiering step {step!r}: start or page")
