"""The audit table's stream consumer: links the entries requests inserted, and counts every change that is not an
insert (metric `AuditItemsChanged`, alarmed: infra/constructs/audit.py). A batch that cannot be linked fails as a
whole and Lambda retries it (linking is idempotent: functions/audit/logic/linker.py).

It also watches for anomalous access (issue 13 §7, functions/audit/logic/anomaly.py): the entries this invocation
linked, and only those (a redelivered item is already linked), are counted per actor and window, and a tenant's
threshold reached raises one `AlertRaised`. Detection never holds linking up: whatever fails in it is logged and
counted (`AnomalyDetectorErrors`), and the batch goes on. The detector's own counters live in the same table;
their stream records (updates, expiry) are not the trail's and are passed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.audit.dal.chain import DynamoChainStore, Head
from functions.audit.logic.linker import ChainStore, StreamChange, apply_changes
from shared import clock
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    # The detector (its models, policies, the bus) is imported by the first batch that linked something, not by
    # the cold start (benchmarks/cold_start.py).
    from functions.audit.logic.anomaly import AnomalyDetector, Observation, PolicyCache
    from shared.audit_proof import LinkedEntry

SAMPLE_EVENT = "dynamodb_stream_audit_inbox.json"  # events/

# The warm function's policies: each tenant's read at most once a minute (logic/anomaly.py PolicyCache).
_POLICIES: PolicyCache | None = None
# The warm function's chain heads, from one batch to the next: a chain is read when new here or when a link finds
# its remembered head wrong (logic/linker.py apply_changes). Forgotten all at once past this many chains.
_HEADS: dict[tuple[str, int], Head] = {}
_HEADS_KEPT = 20_000


class LinkerSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)


class DetectorSettings(LinkerSettings):
    EVENT_BUS_NAME: str = Field(min_length=1)


def _is_counter_key(pk: str) -> bool:
    """The anomaly detector's counters (`T#<tenant>#AUDIT#ANOMALY#...`, functions/audit/dal/anomaly.py)."""
    parts = pk.split("#")
    return len(parts) >= 5 and parts[0] == "T" and parts[2] == "AUDIT" and parts[3] == "ANOMALY"


def changes_of(event: dict[str, Any]) -> list[StreamChange]:
    """The stream records of a Lambda DynamoDB-streams event, in order."""
    out = []
    for record in event.get("Records") or []:
        data = record.get("dynamodb") or {}
        keys = data.get("Keys") or {}
        out.append(
            StreamChange(
                event=str(record.get("eventName")),
                pk=str((keys.get("pk") or {}).get("S", "")),
                sk=str((keys.get("sk") or {}).get("S", "")),
                new_image=data.get("NewImage"),
            )
        )
    return out


class RecordingStore:
    """The chain store, noting what each successful link linked: the entries the detector counts."""

    def __init__(self, store: ChainStore) -> None:
        self._store = store
        self.linked: list[Observation] = []

    def head(self, tenant: str, shard: int) -> Head:
        return self._store.head(tenant, shard)

    def link(self, tenant: str, shard: int, source: str, linked: Sequence[LinkedEntry]) -> None:
        self._store.link(tenant, shard, source, linked)
        try:
            from functions.audit.logic.anomaly import observations

            self.linked.extend(observations(tenant, shard, linked))
        except Exception:  # an entry the detector cannot read is still linked
            metrics.add_metric(name="AnomalyDetectorErrors", unit="Count", value=1)
            logger.exception("linked entries could not be observed", extra={"tenant": tenant, "shard": shard})

    def register(self, tenant: str) -> None:
        self._store.register(tenant)


def default_detector() -> AnomalyDetector:
    global _POLICIES
    from functions.audit.dal.alert_policy import DynamoAlertPolicyStore
    from functions.audit.dal.anomaly import DynamoAnomalyCounters
    from functions.audit.logic.anomaly import AnomalyDetector, PolicyCache
    from functions.audit.models.anomaly import SOURCE
    from shared.events import bus_publisher

    settings = load_settings(DetectorSettings)
    if _POLICIES is None:
        _POLICIES = PolicyCache()
    return AnomalyDetector(
        counters=DynamoAnomalyCounters(settings.AUDIT_TABLE_NAME),
        policies=DynamoAlertPolicyStore(settings.AUDIT_TABLE_NAME),
        publisher=bus_publisher(settings.EVENT_BUS_NAME, SOURCE),
        cache=_POLICIES,
    )


def detect(linked: list[Observation], detector: AnomalyDetector | None) -> int:
    """Run the detector over what was linked; never raises. The number of alerts raised."""
    if not linked:
        return 0
    try:
        report = (detector or default_detector()).observe(linked, clock.now())
    except Exception:
        metrics.add_metric(name="AnomalyDetectorErrors", unit="Count", value=1)
        logger.exception("anomaly detection failed; linking goes on")
        return 0
    if report.errors:
        metrics.add_metric(name="AnomalyDetectorErrors", unit="Count", value=report.errors)
    if report.skipped_windows:
        metrics.add_metric(name="AnomalyWindowsSkipped", unit="Count", value=report.skipped_windows)
    if report.alerts:
        metrics.add_metric(name="AuditAlertsRaised", unit="Count", value=len(report.alerts))
    return len(report.alerts)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    store: ChainStore | None = None,
    detector: AnomalyDetector | None = None,
) -> dict[str, int]:
    heads: dict[tuple[str, int], Head] | None = None
    if store is None:  # the deployed store: its heads are remembered (an injected one starts afresh)
        store = DynamoChainStore(load_settings(LinkerSettings).AUDIT_TABLE_NAME)
        if len(_HEADS) > _HEADS_KEPT:
            _HEADS.clear()
        heads = _HEADS
    recording = RecordingStore(store)
    try:
        changes = [c for c in changes_of(event) if not _is_counter_key(c.pk)]
        report = apply_changes(changes, recording, heads=heads)
    finally:  # what was linked before a failure is counted now: the retry finds it linked and skips it
        alerts = detect(recording.linked, detector)
    metrics.add_metric(name="AuditEntriesLinked", unit="Count", value=report.linked_entries)
    if report.changes_not_inserts:
        metrics.add_metric(name="AuditItemsChanged", unit="Count", value=len(report.changes_not_inserts))
    return {
        "linked_entries": report.linked_entries,
        "linked_items": report.linked_items,
        "already_linked": report.already_linked,
        "changes_not_inserts": len(report.changes_not_inserts),
        "alerts_raised": alerts,
    }
