"""shared.audit.DynamoAuditLog against a moto table with the CDK key schema: the per-tenant hash chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from shared import clock
from shared.audit import GENESIS, AuditEntry, AuditRecord, DynamoAuditLog, Outcome, entry_hash
from shared.errors import BadRequest, DependencyFailure
from shared.keys import sequence_key, tenant_key
from tests.integration.conftest import AUDIT_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _entry(tenant: str, n: int, *, outcome: Outcome = Outcome.ALLOWED) -> AuditEntry:
    return AuditEntry(
        tenant=tenant,
        actor=f"user-{n}",
        action="identity:read",
        resource=f"identity/user-{n}",
        outcome=outcome,
        request_id=f"{tenant}-req-{n}",
        source_ip="198.51.100.1",
        at=T0 + timedelta(seconds=n),
    )


def _key(tenant: str, seq: int) -> dict[str, Any]:
    return {"pk": {"S": tenant_key(tenant, "AUDIT")}, "sk": {"S": sequence_key("SEQ", seq)}}


def _head(ddb: DynamoDBClient, tenant: str) -> dict[str, Any]:
    item = ddb.get_item(TableName=AUDIT_TABLE, Key={"pk": {"S": tenant_key(tenant, "AUDIT")}, "sk": {"S": "HEAD"}})
    return dict(item["Item"])


@pytest.fixture
def audit(tables: dict[str, str], ddb: DynamoDBClient) -> DynamoAuditLog:
    return DynamoAuditLog(tables["audit"], client=ddb)


@pytest.fixture
def two_chains(audit: DynamoAuditLog) -> dict[str, list[AuditRecord]]:
    """Five entries for acme and three for globex, interleaved."""
    chains: dict[str, list[AuditRecord]] = {"acme": [], "globex": []}
    for n in range(1, 6):
        chains["acme"].append(audit.append(_entry("acme", n)))
        if n <= 3:
            chains["globex"].append(audit.append(_entry("globex", n, outcome=Outcome.DENIED)))
    return chains


def test_appends_are_chained_and_stored_per_tenant(
    audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]], ddb: DynamoDBClient
) -> None:
    acme = two_chains["acme"]
    assert [r.seq for r in acme] == [1, 2, 3, 4, 5]
    assert acme[0].prev_hash == GENESIS
    for prev, record in zip(acme, acme[1:], strict=False):
        assert record.prev_hash == prev.hash
    assert acme[2].hash == entry_hash(acme[1].hash, 3, _entry("acme", 3))

    # The stored item: tenant-first key, zero-padded sequence sort key, every field as written.
    item = ddb.get_item(TableName=AUDIT_TABLE, Key=_key("acme", 3))["Item"]
    assert item["pk"] == {"S": "T#acme#AUDIT"}
    assert item["sk"] == {"S": "SEQ#000000000003"}
    assert item["seq"] == {"N": "3"}
    assert item["actor"] == {"S": "user-3"}
    assert item["outcome"] == {"S": "allowed"}
    assert item["request_id"] == {"S": "acme-req-3"}
    assert item["hash"] == {"S": acme[2].hash}
    assert "reason" not in item  # None fields are not stored

    head = _head(ddb, "acme")
    assert head["seq"] == {"N": "5"}
    assert head["hash"] == {"S": acme[-1].hash}
    assert _head(ddb, "globex")["seq"] == {"N": "3"}


def test_entries_come_back_in_order_and_only_for_their_tenant(
    audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]]
) -> None:
    acme = audit.entries("acme")
    assert acme == two_chains["acme"]
    assert [r.request_id for r in acme] == [f"acme-req-{n}" for n in range(1, 6)]
    assert {r.tenant for r in acme} == {"acme"}

    globex = audit.entries("globex")
    assert [r.seq for r in globex] == [1, 2, 3]
    assert {r.outcome for r in globex} == {Outcome.DENIED}

    assert [r.seq for r in audit.entries("acme", after_seq=2, limit=2)] == [3, 4]
    assert audit.entries("initech") == []


def test_entries_pages_through_more_than_one_query(audit: DynamoAuditLog) -> None:
    for n in range(1, 13):
        audit.append(_entry("acme", n))
    assert [r.seq for r in audit.entries("acme", limit=100)] == list(range(1, 13))
    # verify() reads in pages too: a page size smaller than the chain must still see every entry.
    result = audit.verify("acme", page_size=5)
    assert result.ok and result.entries == 12


def test_intact_chains_verify(audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]]) -> None:
    acme = audit.verify("acme")
    assert (acme.ok, acme.entries, acme.broken_at, acme.problem) == (True, 5, None, None)
    globex = audit.verify("globex")
    assert (globex.ok, globex.entries) == (True, 3)
    empty = audit.verify("initech")
    assert (empty.ok, empty.entries) == (True, 0)


@pytest.mark.parametrize(
    ("attribute", "forged"),
    [("outcome", {"S": "denied"}), ("actor", {"S": "someone-else"}), ("at", {"S": "2025-03-01T12:00:03Z"})],
)
def test_an_altered_entry_is_reported_and_other_tenants_are_unaffected(
    audit: DynamoAuditLog,
    two_chains: dict[str, list[AuditRecord]],
    ddb: DynamoDBClient,
    attribute: str,
    forged: dict[str, str],
) -> None:
    ddb.update_item(
        TableName=AUDIT_TABLE,
        Key=_key("acme", 3),
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":v": forged},
    )

    result = audit.verify("acme")
    assert (result.ok, result.broken_at, result.problem, result.entries) == (False, 3, "entry altered", 2)
    assert audit.verify("globex").ok


def test_an_altered_entry_with_a_recomputed_hash_breaks_the_next_link(
    audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]], ddb: DynamoDBClient
) -> None:
    # A forger who also recomputes the altered entry's own hash still breaks the link from entry 4.
    original = two_chains["acme"][2]
    forged = original.model_copy(update={"outcome": Outcome.DENIED})
    base = AuditEntry(**forged.model_dump(include=set(AuditEntry.model_fields)))
    new_hash = entry_hash(original.prev_hash, 3, base)
    ddb.update_item(
        TableName=AUDIT_TABLE,
        Key=_key("acme", 3),
        UpdateExpression="SET outcome = :o, #h = :h",
        ExpressionAttributeNames={"#h": "hash"},
        ExpressionAttributeValues={":o": {"S": "denied"}, ":h": {"S": new_hash}},
    )

    result = audit.verify("acme")
    assert (result.ok, result.broken_at, result.problem) == (False, 4, "entry altered")


def test_a_deleted_middle_entry_is_reported(
    audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]], ddb: DynamoDBClient
) -> None:
    ddb.delete_item(TableName=AUDIT_TABLE, Key=_key("acme", 2))

    result = audit.verify("acme")
    assert (result.ok, result.broken_at, result.problem, result.entries) == (False, 2, "entry missing", 1)
    assert audit.verify("globex").ok


def test_a_deleted_last_entry_is_reported_through_the_head(
    audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]], ddb: DynamoDBClient
) -> None:
    ddb.delete_item(TableName=AUDIT_TABLE, Key=_key("acme", 5))

    result = audit.verify("acme")
    assert (result.ok, result.broken_at, result.problem, result.entries) == (False, 5, "entries missing at the end", 4)
    assert audit.verify("globex").ok


def test_a_head_rewound_with_the_last_entry_is_still_reported_when_the_hash_differs(
    audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]], ddb: DynamoDBClient
) -> None:
    # Deleting the last entry and moving the head's seq back (but not its hash) is caught by the head hash.
    ddb.delete_item(TableName=AUDIT_TABLE, Key=_key("acme", 5))
    ddb.update_item(
        TableName=AUDIT_TABLE,
        Key={"pk": {"S": "T#acme#AUDIT"}, "sk": {"S": "HEAD"}},
        UpdateExpression="SET seq = :s",
        ExpressionAttributeValues={":s": {"N": "4"}},
    )

    result = audit.verify("acme")
    assert (result.ok, result.problem) == (False, "entries missing at the end")


def test_appends_after_verification_continue_the_chain(
    audit: DynamoAuditLog, two_chains: dict[str, list[AuditRecord]]
) -> None:
    record = audit.append(_entry("acme", 6))
    assert (record.seq, record.prev_hash) == (6, two_chains["acme"][-1].hash)
    assert audit.verify("acme").entries == 6


def test_entries_use_the_service_clock_by_default(audit: DynamoAuditLog) -> None:
    clock.freeze(T0)
    entry = AuditEntry(
        tenant="acme", actor="a", action="identity:read", resource="r", outcome=Outcome.ALLOWED, request_id="r1"
    )
    audit.append(entry)
    assert audit.entries("acme")[0].at == T0


def test_an_invalid_tenant_is_refused_before_anything_is_written(audit: DynamoAuditLog, ddb: DynamoDBClient) -> None:
    with pytest.raises(BadRequest):
        audit.append(_entry("Not A Tenant", 1))
    assert ddb.scan(TableName=AUDIT_TABLE)["Count"] == 0


class RacingClient:
    """Delegates to a real client; before the first `transact_write_items` it lets a rival append first."""

    def __init__(self, real: DynamoDBClient, rival: DynamoAuditLog, rival_entry: AuditEntry, races: int = 1) -> None:
        self._real = real
        self._rival = rival
        self._rival_entry = rival_entry
        self._races = races
        self.transactions = 0
        self.cancelled = 0
        self._raced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        if self._races > 0:
            self._races -= 1
            # Each race is a different fact (the same one again would be recorded once, not appended).
            suffix = f"-{self._raced}" if self._raced else ""
            entry = self._rival_entry.model_copy(update={"request_id": self._rival_entry.request_id + suffix})
            self._raced += 1
            self._rival.append(entry)  # commits between our head read and our transaction
        try:
            return self._real.transact_write_items(**kwargs)
        except self._real.exceptions.TransactionCanceledException:
            self.cancelled += 1
            raise


@pytest.mark.parametrize("existing", [0, 2], ids=["empty-chain", "existing-chain"])
def test_a_racing_append_is_retried_on_the_new_head_instead_of_forking(
    audit: DynamoAuditLog, ddb: DynamoDBClient, existing: int
) -> None:
    for n in range(1, existing + 1):
        audit.append(_entry("acme", n))
    rival_entry = _entry("acme", 100)
    racing = RacingClient(ddb, DynamoAuditLog(AUDIT_TABLE, client=ddb), rival_entry)
    loser = DynamoAuditLog(AUDIT_TABLE, client=racing)  # type: ignore[arg-type]

    record = loser.append(_entry("acme", 200))

    # The first transaction lost the race on the head and was cancelled; the retry chained onto the rival.
    assert (racing.transactions, racing.cancelled) == (2, 1)
    stored = audit.entries("acme")
    assert [r.request_id for r in stored[existing:]] == ["acme-req-100", "acme-req-200"]
    assert record.seq == existing + 2
    assert record.prev_hash == stored[existing].hash
    verification = audit.verify("acme")
    assert (verification.ok, verification.entries) == (True, existing + 2)


def test_an_append_that_keeps_losing_gives_up_with_a_dependency_failure(
    audit: DynamoAuditLog, ddb: DynamoDBClient
) -> None:
    racing = RacingClient(ddb, DynamoAuditLog(AUDIT_TABLE, client=ddb), _entry("acme", 100), races=100)
    loser = DynamoAuditLog(AUDIT_TABLE, client=racing)  # type: ignore[arg-type]

    with pytest.raises(DependencyFailure):
        loser.append(_entry("acme", 200))

    assert racing.transactions == racing.cancelled == 8
    stored = audit.entries("acme")
    # only the rival's appends, never a fork
    assert [r.request_id for r in stored] == ["acme-req-100"] + [f"acme-req-100-{n}" for n in range(1, 8)]
    assert audit.verify("acme").ok


def test_the_same_fact_appended_again_is_recorded_once(audit: DynamoAuditLog, ddb: DynamoDBClient) -> None:
    # Given an entry already in the chain
    first = audit.append(_entry("acme", 1))
    audit.append(_entry("acme", 2))
    # When the same fact is appended again later (a retried invocation: same request, actor, action, resource
    # and outcome, a later time)
    again = audit.append(_entry("acme", 1).model_copy(update={"at": T0 + timedelta(hours=1)}))
    # Then the record already in the chain is returned and nothing is added
    assert again == first
    assert [r.seq for r in audit.entries("acme")] == [1, 2]
    assert audit.verify("acme").ok


@pytest.mark.parametrize(
    "change",
    [{"action": "identity:write"}, {"resource": "identity/other"}, {"outcome": Outcome.DENIED}, {"actor": "x"}],
    ids=["action", "resource", "outcome", "actor"],
)
def test_a_different_fact_under_the_same_request_is_appended(audit: DynamoAuditLog, change: dict[str, Any]) -> None:
    audit.append(_entry("acme", 1))
    record = audit.append(_entry("acme", 1).model_copy(update=change))
    assert record.seq == 2
    assert audit.verify("acme").entries == 2


def test_the_same_fact_in_another_tenant_is_its_own_entry(audit: DynamoAuditLog) -> None:
    audit.append(_entry("acme", 1))
    other = audit.append(_entry("acme", 1).model_copy(update={"tenant": "globex"}))
    assert (other.tenant, other.seq) == ("globex", 1)
