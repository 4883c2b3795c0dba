"""The pure parts of the audit chain: entries, their canonical hash, and the record layout.

Appending, paging and verifying run against DynamoDB and are covered by the integration tier.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.audit import GENESIS, AuditEntry, AuditRecord, Outcome, _from_item, _to_item, entry_hash

AT = datetime(2025, 11, 20, 9, 15, 30, 123000, tzinfo=UTC)


def entry(**overrides: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "actor": "user-1",
        "action": "identity:read",
        "resource": "identity/user-1",
        "outcome": Outcome.ALLOWED,
        "request_id": "req-1",
        "reason": None,
        "source_ip": "198.51.100.7",
        "at": AT,
    }
    fields.update(overrides)
    return AuditEntry(**fields)


def test_genesis_is_64_zeros() -> None:
    assert GENESIS == "0" * 64


def test_hash_is_deterministic() -> None:
    assert entry_hash(GENESIS, 1, entry()) == entry_hash(GENESIS, 1, entry())


def test_hash_is_sha256_of_previous_hash_and_canonical_json() -> None:
    canonical = json.dumps(
        {
            "action": "identity:read",
            "actor": "user-1",
            "at": "2025-11-20T09:15:30.123000Z",
            "outcome": "allowed",
            "reason": None,
            "request_id": "req-1",
            "resource": "identity/user-1",
            "seq": 1,
            "source_ip": "198.51.100.7",
            "tenant": "acme",
        },
        separators=(",", ":"),
    )

    digest = entry_hash(GENESIS, 1, entry())

    assert digest == hashlib.sha256((GENESIS + canonical).encode()).hexdigest()
    assert len(digest) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"tenant": "globex"},
        {"actor": "user-2"},
        {"action": "audit:read"},
        {"resource": "identity/user-2"},
        {"outcome": Outcome.DENIED},
        {"request_id": "req-2"},
        {"reason": "missing role"},
        {"source_ip": "203.0.113.1"},
        {"source_ip": None},
        {"at": datetime(2025, 11, 20, 9, 15, 30, 124000, tzinfo=UTC)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_changing_any_field_changes_the_hash(change: dict[str, Any]) -> None:
    assert entry_hash(GENESIS, 1, entry(**change)) != entry_hash(GENESIS, 1, entry())


def test_the_sequence_number_is_part_of_the_hash() -> None:
    assert entry_hash(GENESIS, 2, entry()) != entry_hash(GENESIS, 1, entry())


def test_the_previous_hash_is_part_of_the_hash() -> None:
    first = entry_hash(GENESIS, 1, entry())

    assert entry_hash(first, 2, entry()) != entry_hash(GENESIS, 2, entry())


def test_a_chain_links_each_hash_to_the_previous_one() -> None:
    entries = [entry(request_id=f"req-{n}") for n in range(1, 4)]
    prev, chain = GENESIS, []
    for seq, item in enumerate(entries, start=1):
        prev = entry_hash(prev, seq, item)
        chain.append(prev)

    assert len(set(chain)) == 3
    tampered = entry_hash(chain[0], 2, entry(request_id="req-X"))
    assert tampered != chain[1]


def test_entries_are_frozen() -> None:
    item = entry()

    with pytest.raises(ValidationError):
        item.actor = "someone-else"  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [{"actor": ""}, {"action": ""}, {"resource": ""}, {"request_id": ""}, {"outcome": "maybe"}, {"action": "x" * 129}],
    ids=lambda bad: next(iter(bad)),
)
def test_invalid_entries_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        entry(**bad)


def test_entries_default_to_the_service_clock() -> None:
    from shared import clock

    clock.freeze(AT)
    try:
        item = AuditEntry(tenant="acme", actor="a", action="b", resource="c", outcome=Outcome.FAILED, request_id="r")
    finally:
        clock.freeze(None)

    assert item.at == AT
    assert item.reason is None
    assert item.source_ip is None


def test_records_round_trip_through_the_item_layout() -> None:
    base = entry(reason=None)
    digest = entry_hash(GENESIS, 7, base)
    record = AuditRecord(**base.model_dump(), seq=7, prev_hash=GENESIS, hash=digest)

    item = _to_item("T#acme#AUDIT", record)

    assert item["pk"] == {"S": "T#acme#AUDIT"}
    assert item["sk"] == {"S": "SEQ#000000000007"}
    assert item["seq"] == {"N": "7"}
    assert "reason" not in item
    back = _from_item(item)
    assert back == record
    rebuilt = AuditEntry(**back.model_dump(include=set(AuditEntry.model_fields)))
    assert entry_hash(back.prev_hash, back.seq, rebuilt) == back.hash
