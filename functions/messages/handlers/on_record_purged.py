"""Consumer of the retention domain's `RecordPurged` (source `ats.retention`): erases the content of that person's
messages, unless a legal hold keeps it (functions/messages/logic/erasure.py). It also consumes this domain's own
`MessageHoldChanged` (source `ats.messages`): a release finishes the erasures that hold kept back.

A record whose erasure fails returns to the queue and, after its maxReceiveCount, to the alarmed DLQ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.logic.erasure import JOB, ErasurePorts, erase_for_purge, resume_after_release
from functions.messages.models.events import SOURCE as MESSAGES_SOURCE
from functions.messages.models.holds_events import RETENTION_SOURCE, MessageHoldChanged, RecordPurged
from shared.consumers import EventConsumer
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    from functions.messages.logic.erasure import ErasureOutcome
    from shared.auth import Actor
    from shared.events import DomainEvent

SAMPLE_EVENT = "sqs_eventbridge_record_purged.json"  # events/: what this entry point receives (benchmarks, tests)
ERASED_METRIC = "MessagesErased"
HELD_METRIC = "MessageErasuresHeldBack"


class ErasureSettings(BaseSettings):
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)


class _Opener:
    def __init__(self, key_arn: str) -> None:
        from shared.crypto import FieldCipher

        self._cipher = FieldCipher(key_arn)

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        return self._cipher.decrypt(tenant, "message", sealed, record=message_id, field=field_name)


def build_ports(settings: ErasureSettings) -> ErasurePorts:
    """The real adapters (clients are created on their first call)."""
    from functions.messages.dal.archive import ArchivedMessages, S3MessageArchive
    from functions.messages.dal.holds import DynamoHoldStore
    from functions.messages.dal.messages import DynamoMessageStore
    from functions.messages.dal.terms import DynamoTermStore
    from functions.messages.logic.blind_index import BlindIndex
    from functions.messages.logic.redaction import ContentTools
    from shared.audit import DynamoAuditLog
    from shared.crypto import TenantKeys
    from shared.events import bus_publisher
    from shared.secrets import TenantSecrets

    table = settings.MESSAGES_TABLE_NAME
    return ErasurePorts(
        # Archived messages are read back whole, so their content and terms are found and removed from the archive.
        messages=ArchivedMessages(
            DynamoMessageStore(table), S3MessageArchive(settings.ARCHIVE_BUCKET_NAME), whole_in_queries=True
        ),
        holds=DynamoHoldStore(table),
        tools=ContentTools(
            opener=_Opener(settings.DATA_KEY_ARN),
            index=BlindIndex(TenantKeys(TenantSecrets(settings.TENANT_SECRET_PREFIX))),
            terms=DynamoTermStore(table),
        ),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        publisher=bus_publisher(settings.EVENT_BUS_NAME, MESSAGES_SOURCE),
    )


# Built on the first record; tests replace it with fakes.
ports: ErasurePorts | None = None


def _ports() -> ErasurePorts:
    global ports
    if ports is None:
        ports = build_ports(load_settings(ErasureSettings))
    return ports


def _count(outcomes: list[ErasureOutcome]) -> None:
    erased = sum(o.erased for o in outcomes)
    held = sum(1 for o in outcomes if o.held)
    if erased:
        metrics.add_metric(name=ERASED_METRIC, unit="Count", value=erased)
    if held:
        metrics.add_metric(name=HELD_METRIC, unit="Count", value=held)
    for o in outcomes:
        logger.info(
            "erasure of message content",
            extra={
                "record_kind": o.scope.record_kind.value,
                "erased": o.erased,
                "unchanged": o.unchanged,
                "held": len(o.held),
                "holds": sorted(o.holds)[:20],
            },
        )


def handle(event: DomainEvent, actor: Actor, *, erasure_ports: ErasurePorts | None = None) -> None:
    """One consumed event: a purge to erase, or a hold change that may finish erasures held back."""
    used = erasure_ports or _ports()
    if isinstance(event, RecordPurged):
        outcome = erase_for_purge(event, actor, used)
        _count([outcome] if outcome else [])
    elif isinstance(event, MessageHoldChanged):
        _count(resume_after_release(event, actor, used))


consumer = EventConsumer(
    [RecordPurged, MessageHoldChanged], handle, job=JOB, sources={RETENTION_SOURCE, MESSAGES_SOURCE}
)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer(event, context)
