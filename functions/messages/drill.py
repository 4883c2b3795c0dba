"""The restore drill of the messages table (issue 12, section 7): restore the table to a point in time into a new
table, wait for it, and check it against the audit trail.

    python -m functions.messages.drill --table <messages table> --audit-table <audit table> \\
        --restore-time 2026-11-27T09:00:00Z [--endpoint-url http://127.0.0.1:4566] [--target <name>] [--keep]

The audit trail is the independent record: it lives in another table, which is not restored (its integrity is
proven by its signed digests: `ats-audit verify`). What it proves is checked on the restored table, tenant by
tenant, with a settling margin (`--settle-seconds`, default 300) around the restore time T for writes that straddle it:

- the message policy: every stored policy version is one change audited (`messages:policy`, allowed) before T,
  so the restored version is at most the number of those entries; it is at least the live version less the
  changes audited since T - margin (those the restore may rightly lack); it was not changed after T;
- the legal holds: every hold the live table says was placed (or released) before T - margin is in the
  restore (released); every hold in the restore has its audited placement (`messages:legal-hold` on
  `message-hold/<id>:place`, allowed) before T, a released one its audited release, and neither happened after
  T; an active hold whose fan-out went through carries its marks on at least `messages_held` messages;
- the messages are counted per tenant (and those carrying a hold).

It prints one JSON report on stdout. Exit status: 0 the restore reflects the audit trail, 1 a mismatch, 2 the
drill could not run (the restore was refused or did not finish in time). The restored table is deleted at the
end unless `--keep` (it holds personal data, possibly content erased since T: it must not outlive the drill), and
`--check-only --target <name>` checks a table restored before (a kept one) without restoring or deleting.

IAM for the operator's role: `dynamodb:RestoreTableToPointInTime` and `Query`/`GetItem` on the messages table,
`Scan`/`Query`/`GetItem` on the audit table, and on the restored table (`<table>-drill-*`) what a restore
writes with (`PutItem`, `UpdateItem`, `DeleteItem`, `GetItem`, `Query`, `Scan`, `BatchWriteItem`) plus
`DescribeTable` and `DeleteTable`; the tables' KMS key through DynamoDB (`kms:ViaService`). Against moto: its
restore copies the table as it is now (it ignores `RestoreDateTime` and does not need PITR), which is enough to
exercise the drill end to end, not to test PITR itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.messages.dal.holds import HOLDS
from functions.messages.dal.items import MESSAGE_SK, message_key, policy_key
from shared import clock
from shared.keys import PLATFORM_TENANT, tenant_key

POLICY_ACTION = "messages:policy"
HOLD_ACTION = "messages:legal-hold"
ALLOWED = "allowed"
_HOLD_RESOURCE = re.compile(r"^message-hold/(?P<id>.+):(?P<verb>place|release)$")  # functions/messages/logic/holds.py
_POLICY_SK = policy_key(PLATFORM_TENANT)["sk"]["S"]  # the same sort key in every tenant
_HOLDS_PART = f"#{HOLDS}"
_INDEX = {"candidate": ("ByCandidate", "candidate_key"), "requisition": ("ByRequisition", "requisition_key")}
DEFAULT_SETTLE_SECONDS = 300
DEFAULT_WAIT_MINUTES = 180  # a restore takes from minutes to hours, with the table's size
_POLL_SECONDS = 20.0

log = logging.getLogger("messages.drill")


class DrillError(Exception):
    """The drill could not run to its checks (exit status 2)."""


# --- what the audit trail and the tables say ---------------------------------------------------------------


@dataclass
class AuditFacts:
    """A tenant's allowed policy changes and hold placements and releases, as the audit trail records them."""

    policy_changes: list[datetime] = field(default_factory=list)
    placed: dict[str, datetime] = field(default_factory=dict)  # hold id -> first audited placement
    released: dict[str, datetime] = field(default_factory=dict)  # hold id -> first audited release


@dataclass(frozen=True)
class PolicyState:
    version: int
    content: str | None
    updated_at: datetime | None
    updated_by: str | None


@dataclass(frozen=True)
class HoldState:
    hold_id: str
    subject_kind: str | None
    subject_id: str | None
    placed_at: datetime | None
    released_at: datetime | None
    messages_held: int
    fanout_done: bool


@dataclass
class TableState:
    """A tenant's part of a messages table, as far as the drill checks it."""

    messages: int = 0
    held_messages: int = 0
    policy: PolicyState | None = None
    holds: dict[str, HoldState] = field(default_factory=dict)


@dataclass(frozen=True)
class Mismatch:
    tenant: str
    kind: str
    subject: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"tenant": self.tenant, "kind": self.kind, "subject": self.subject, "detail": self.detail}


def _time(attr: dict[str, Any] | None) -> datetime | None:
    if not attr:
        return None
    if "N" in attr:
        return datetime.fromtimestamp(float(attr["N"]), tz=UTC)
    return datetime.fromisoformat(attr["S"])


def _tenant_of(pk: str) -> str:
    return pk.split("#", 2)[1]


def _pages(call: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Scan or Query, page by page."""
    while True:
        response = call(**request)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def read_audit_facts(client: Any, audit_table: str) -> dict[str, AuditFacts]:
    """The allowed policy and legal-hold decisions of every tenant, as the requests recorded them: one filtered
    Scan of the audit table's inbox items (shared/audit.py; the drill runs rarely and the trail has no index by
    action). The trail's own integrity is the audit domain's to prove: `ats-audit verify` on an export."""
    import json

    facts: dict[str, AuditFacts] = defaultdict(AuditFacts)
    for item in _pages(
        client.scan,
        TableName=audit_table,
        FilterExpression="contains(pk, :inbox)",
        ProjectionExpression="entries",
        ExpressionAttributeValues={":inbox": {"S": "#AUDITIN#"}},
    ):
        for entry in json.loads(item["entries"]["S"]):
            if entry.get("outcome") != ALLOWED or entry.get("action") not in (POLICY_ACTION, HOLD_ACTION):
                continue
            tenant, at = entry["tenant"], _time({"S": entry["at"].replace("Z", "+00:00")})
            assert at is not None
            if entry["action"] == POLICY_ACTION:
                facts[tenant].policy_changes.append(at)
                continue
            matched = _HOLD_RESOURCE.match(entry["resource"])
            if matched:
                seen = facts[tenant].placed if matched["verb"] == "place" else facts[tenant].released
                hold_id = matched["id"]
                seen[hold_id] = min(at, seen.get(hold_id, at))
    return dict(facts)


def _policy(item: dict[str, Any]) -> PolicyState:
    return PolicyState(
        version=int(item["version"]["N"]),
        content=item.get("content", {}).get("S"),
        updated_at=_time(item.get("updated_at")),
        updated_by=item.get("updated_by", {}).get("S"),
    )


def _hold(item: dict[str, Any]) -> HoldState:
    return HoldState(
        hold_id=item["sk"]["S"],
        subject_kind=item.get("subject_kind", {}).get("S"),
        subject_id=item.get("subject_id", {}).get("S"),
        placed_at=_time(item.get("placed_at")),
        released_at=_time(item.get("released_at")),
        messages_held=int(item.get("messages_held", {}).get("N", "0")),
        fanout_done="fanout_cursor" not in item,
    )


def read_restored(client: Any, table: str) -> dict[str, TableState]:
    """Every tenant's messages (counted), policy and holds in the restored table: one Scan."""
    state: dict[str, TableState] = defaultdict(TableState)
    attributes = [
        "pk",
        "sk",
        "tenant",
        "holds",
        "version",
        "content",
        "updated_at",
        "updated_by",
        "subject_kind",
        "subject_id",
        "placed_at",
        "released_at",
        "messages_held",
        "fanout_cursor",
    ]
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    for item in _pages(
        client.scan,
        TableName=table,
        FilterExpression="#a1 = :msg OR #a1 = :policy OR contains(#a0, :holds)",
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={
            ":msg": {"S": MESSAGE_SK},
            ":policy": {"S": _POLICY_SK},
            ":holds": {"S": _HOLDS_PART},
        },
    ):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        tenant = _tenant_of(pk)
        if sk == MESSAGE_SK and pk.startswith(tenant_key(tenant, "MSG") + "#"):
            state[tenant].messages += 1
            state[tenant].held_messages += bool(item.get("holds", {}).get("SS"))
        elif sk == _POLICY_SK and pk == tenant_key(tenant, "POLICY"):
            state[tenant].policy = _policy(item)
        elif pk == tenant_key(tenant, HOLDS):
            state[tenant].holds[sk] = _hold(item)
    return dict(state)


def read_live(client: Any, table: str, tenants: Sequence[str]) -> dict[str, TableState]:
    """The live table's policy and holds of `tenants`, by key (no Scan of the live table)."""
    live: dict[str, TableState] = {}
    for tenant in tenants:
        state = TableState()
        found = client.get_item(TableName=table, Key=policy_key(tenant), ConsistentRead=True).get("Item")
        state.policy = _policy(found) if found else None
        for item in _pages(
            client.query,
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": tenant_key(tenant, HOLDS)}},
            ConsistentRead=True,
        ):
            state.holds[item["sk"]["S"]] = _hold(item)
        live[tenant] = state
    return live


def count_marks(client: Any, table: str, tenant: str, hold: HoldState) -> int | None:
    """How many messages of the hold's subject carry its id in `table`; None for a subject the drill does not know."""
    if hold.subject_id is None:
        return None
    if hold.subject_kind == "message":
        item = client.get_item(
            TableName=table,
            Key=message_key(tenant, hold.subject_id),
            ProjectionExpression="#h",
            ExpressionAttributeNames={"#h": "holds"},
        ).get("Item")
        return int(bool(item) and hold.hold_id in item.get("holds", {}).get("SS", []))
    if hold.subject_kind not in _INDEX:
        return None
    index, attribute = _INDEX[hold.subject_kind]
    return sum(
        hold.hold_id in item.get("holds", {}).get("SS", [])
        for item in _pages(
            client.query,
            TableName=table,
            IndexName=index,
            KeyConditionExpression="#p = :p",
            ProjectionExpression="#h",
            ExpressionAttributeNames={"#p": attribute, "#h": "holds"},
            ExpressionAttributeValues={":p": {"S": f"{tenant}#{hold.subject_id}"}},
        )
    )


# --- the comparison (pure) ---------------------------------------------------------------------------------


def compare(
    restore_time: datetime,
    settle: timedelta,
    facts: dict[str, AuditFacts],
    restored: dict[str, TableState],
    live: dict[str, TableState],
    marks: dict[tuple[str, str], int | None],
) -> list[Mismatch]:
    """Every way the restored table disagrees with the audit trail (and with the live table's own record of
    when its holds were placed)."""
    out: list[Mismatch] = []
    settled = restore_time - settle
    for tenant in sorted(set(facts) | set(restored) | set(live)):
        audit = facts.get(tenant, AuditFacts())
        was, now = restored.get(tenant, TableState()), live.get(tenant, TableState())
        out += _compare_policy(tenant, restore_time, settled, audit, was.policy, now.policy)
        out += _compare_holds(tenant, restore_time, settled, audit, was, now, marks)
    return out


def _compare_policy(
    tenant: str,
    restore_time: datetime,
    settled: datetime,
    audit: AuditFacts,
    restored: PolicyState | None,
    live: PolicyState | None,
) -> list[Mismatch]:
    def mismatch(kind: str, detail: str) -> Mismatch:
        return Mismatch(tenant, kind, "message-policy", detail)

    out = []
    audited_before = sum(1 for at in audit.policy_changes if at <= restore_time)
    maybe_after = sum(1 for at in audit.policy_changes if at > settled)
    version = restored.version if restored else 0
    live_version = live.version if live else 0
    if version > audited_before:
        out.append(
            mismatch(
                "policy_unaudited",
                f"the restored policy is at version {version}; {audited_before} change(s) were audited before T",
            )
        )
    if restored and restored.updated_at and restored.updated_at > restore_time:
        out.append(mismatch("policy_after_restore_time", f"changed at {clock.isoformat(restored.updated_at)}"))
    if version < live_version - maybe_after:
        out.append(
            mismatch(
                "policy_change_missing",
                f"the restored policy is at version {version}; the live one at {live_version} with at most "
                f"{maybe_after} change(s) audited since T - margin",
            )
        )
    if version > live_version:
        out.append(mismatch("policy_newer_than_live", f"restored version {version}, live {live_version}"))
    return out


def _compare_holds(
    tenant: str,
    restore_time: datetime,
    settled: datetime,
    audit: AuditFacts,
    restored: TableState,
    live: TableState,
    marks: dict[tuple[str, str], int | None],
) -> list[Mismatch]:
    out = []
    for hold_id, now in sorted(live.holds.items()):
        if now.placed_at and now.placed_at <= settled and hold_id not in restored.holds:
            out.append(
                Mismatch(tenant, "hold_missing", hold_id, f"placed at {clock.isoformat(now.placed_at)}, not restored")
            )
        was = restored.holds.get(hold_id)
        if now.released_at and now.released_at <= settled and was is not None and was.released_at is None:
            out.append(
                Mismatch(
                    tenant,
                    "release_missing",
                    hold_id,
                    f"released at {clock.isoformat(now.released_at)}, restored active",
                )
            )
    for hold_id, was in sorted(restored.holds.items()):
        placed = audit.placed.get(hold_id)
        if placed is None or placed > restore_time:
            out.append(Mismatch(tenant, "hold_unaudited", hold_id, "no allowed placement audited before T"))
        if was.placed_at and was.placed_at > restore_time:
            out.append(
                Mismatch(tenant, "hold_after_restore_time", hold_id, f"placed at {clock.isoformat(was.placed_at)}")
            )
        if was.released_at is not None:
            released = audit.released.get(hold_id)
            if released is None or released > restore_time:
                out.append(Mismatch(tenant, "release_unaudited", hold_id, "no allowed release audited before T"))
            if was.released_at > restore_time:
                out.append(
                    Mismatch(
                        tenant,
                        "release_after_restore_time",
                        hold_id,
                        f"released at {clock.isoformat(was.released_at)}",
                    )
                )
            continue
        marked = marks.get((tenant, hold_id))
        if was.fanout_done and marked is not None and marked < was.messages_held:
            out.append(
                Mismatch(
                    tenant,
                    "hold_marks_missing",
                    hold_id,
                    f"{marked} restored message(s) carry the hold; its fan-out marked {was.messages_held}",
                )
            )
    return out


# --- restoring -------------------------------------------------------------------------------------------


def restore(client: Any, source: str, target: str, at: datetime) -> None:
    """Start the restore of `source` as it was at `at` into the new table `target` (same indexes and encryption:
    DynamoDB takes them from the source; PITR, TTL, alarms and tags are not restored, nor needed here)."""
    from botocore.exceptions import ClientError

    try:
        client.restore_table_to_point_in_time(
            SourceTableName=source,
            TargetTableName=target,
            RestoreDateTime=at,
            UseLatestRestorableTime=False,
            BillingModeOverride="PAY_PER_REQUEST",
        )
    except ClientError as refused:
        error = refused.response.get("Error", {})
        raise DrillError(f"the restore was refused: {error.get('Code')}: {error.get('Message')}") from None


def wait_until_active(
    client: Any,
    table: str,
    *,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> float:
    """Wait for the restored table and its indexes to be ACTIVE with the restore finished; the seconds waited."""
    started = monotonic()
    while True:
        described = client.describe_table(TableName=table)["Table"]
        indexes = described.get("GlobalSecondaryIndexes", [])
        if (
            described.get("TableStatus") == "ACTIVE"
            and not described.get("RestoreSummary", {}).get("RestoreInProgress", False)
            and all(i.get("IndexStatus") == "ACTIVE" for i in indexes)
        ):
            return round(monotonic() - started, 3)
        if monotonic() - started + _POLL_SECONDS > timeout_seconds:
            raise DrillError(
                f"{table} was not ACTIVE after {timeout_seconds:g} s (status {described.get('TableStatus')})"
            )
        log.info("waiting for the restore (%s)", described.get("TableStatus"))
        sleep(_POLL_SECONDS)


# --- the drill ---------------------------------------------------------------------------------------------


def run_drill(
    client: Any,
    *,
    table: str,
    audit_table: str,
    restore_time: datetime,
    target: str | None = None,
    check_only: bool = False,
    keep: bool = False,
    settle: timedelta = timedelta(seconds=DEFAULT_SETTLE_SECONDS),
    wait: timedelta = timedelta(minutes=DEFAULT_WAIT_MINUTES),
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Restore (unless `check_only`), check, and delete the restored table (unless `keep`, or `check_only`:
    the drill deletes only what it restored); the report. `error` is in it when the drill could not get as far
    as the checks."""
    from botocore.exceptions import BotoCoreError, ClientError

    target = target or f"{table}-drill-{clock.now():%Y%m%d%H%M%S}"
    report: dict[str, Any] = {
        "source_table": table,
        "restored_table": target,
        "audit_table": audit_table,
        "restore_time": restore_time.isoformat(),
        "settle_seconds": settle.total_seconds(),
    }
    created = False
    try:
        if restore_time.utcoffset() is None:
            raise DrillError("the restore time needs its UTC offset")
        if target == table:
            raise DrillError("the restored table must be a new table, not the source")
        if not check_only:
            if restore_time > clock.now():
                raise DrillError("the restore time is in the future")
            log.info("restoring %s into %s", table, target)
            restore(client, table, target, restore_time)
            created = True
        report["seconds_to_active"] = wait_until_active(
            client, target, timeout_seconds=wait.total_seconds(), sleep=sleep
        )
        report.update(_check(client, table, audit_table, target, restore_time, settle))
    except DrillError as failed:
        report.update(ok=False, error=str(failed))
    except (BotoCoreError, ClientError) as failed:
        code = failed.response.get("Error", {}).get("Code") if isinstance(failed, ClientError) else None
        report.update(ok=False, error=f"{type(failed).__name__}: {code or failed}")
    finally:
        report["kept"] = created and keep
        if created and not keep:
            _delete(client, target, report)
    return report


def _check(
    client: Any, table: str, audit_table: str, target: str, restore_time: datetime, settle: timedelta
) -> dict[str, Any]:
    facts = read_audit_facts(client, audit_table)
    restored = read_restored(client, target)
    tenants = sorted(set(facts) | {t for t, s in restored.items() if s.policy or s.holds})
    live = read_live(client, table, tenants)
    marks = {
        (tenant, hold.hold_id): count_marks(client, target, tenant, hold)
        for tenant, state in restored.items()
        for hold in state.holds.values()
        if hold.released_at is None
    }
    mismatches = compare(restore_time, settle, facts, restored, live, marks)
    tenants_report = {}
    for tenant in sorted(set(facts) | set(restored)):
        state, audit = restored.get(tenant, TableState()), facts.get(tenant, AuditFacts())
        tenants_report[tenant] = {
            "messages": state.messages,
            "held_messages": state.held_messages,
            "policy_version": state.policy.version if state.policy else 0,
            "policy_changes_audited_before_t": sum(1 for at in audit.policy_changes if at <= restore_time),
            "holds_restored": len(state.holds),
            "holds_active": sum(1 for h in state.holds.values() if h.released_at is None),
            "holds_audited_before_t": sum(1 for at in audit.placed.values() if at <= restore_time),
        }
    return {
        "ok": not mismatches,
        "messages": sum(s.messages for s in restored.values()),
        "tenants": tenants_report,
        "mismatches": [m.as_dict() for m in mismatches],
    }


def _delete(client: Any, target: str, report: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    try:
        client.delete_table(TableName=target)
        report["deleted"] = True
    except ClientError as failed:
        report["deleted"] = False
        report["delete_error"] = failed.response.get("Error", {}).get("Code")
        log.warning("%s was not deleted: delete it by hand", target)


# --- command line ------------------------------------------------------------------------------------------


def _aware(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    if parsed.utcoffset() is None:
        raise argparse.ArgumentTypeError("the restore time needs its UTC offset (Z or +hh:mm)")
    return parsed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m functions.messages.drill",
        description="Restore the messages table to a point in time into a new table and check it against the audit "
        "trail.",
    )
    parser.add_argument("--table", required=True, help="the messages table (the source of the restore)")
    parser.add_argument("--audit-table", required=True)
    parser.add_argument("--restore-time", required=True, type=_aware, help="ISO 8601 with offset")
    parser.add_argument("--target", help="name of the restored table (default <table>-drill-<now>)")
    parser.add_argument("--endpoint-url", help="an emulator's endpoint (moto server)")
    parser.add_argument("--region")
    parser.add_argument("--keep", action="store_true", help="keep the restored table")
    parser.add_argument("--check-only", action="store_true", help="check the existing --target, restore nothing")
    parser.add_argument("--settle-seconds", type=int, default=DEFAULT_SETTLE_SECONDS)
    parser.add_argument("--wait-minutes", type=int, default=DEFAULT_WAIT_MINUTES)
    return parser


def _client(endpoint_url: str | None, region: str | None) -> Any:
    import botocore.session
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 8})
    return botocore.session.get_session().create_client(
        "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
    )


def main(argv: Sequence[str] | None = None, *, sleep: Callable[[float], None] = time.sleep) -> int:
    args = _parser().parse_args(argv)
    if args.check_only and not args.target:
        _parser().error("--check-only needs --target")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    report = run_drill(
        _client(args.endpoint_url, args.region),
        table=args.table,
        audit_table=args.audit_table,
        restore_time=args.restore_time,
        target=args.target,
        check_only=args.check_only,
        keep=args.keep,
        settle=timedelta(seconds=args.settle_seconds),
        wait=timedelta(minutes=args.wait_minutes),
        sleep=sleep,
    )
    sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 2 if "error" in report else 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
