"""The pure parts of the request path's audit: entries, their proof-format fields, the inbox item and its
fingerprint. Writing, linking and verifying run against DynamoDB and are covered by the integration tier
(tests/integration/test_audit_chain.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.audit import (
    INBOX_SHARDS,
    AuditEntry,
    Outcome,
    entries_of_item,
    entry_fields,
    entry_from_fields,
    fingerprint,
    inbox_item,
)
from shared.audit_proof import canonical

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


def test_an_entry_is_recorded_in_the_proof_format_without_its_absent_fields() -> None:
    fields = entry_fields(entry())

    assert fields == {
        "v": 2,
        "tenant": "acme",
        "at": "2025-11-20T09:15:30.123000Z",
        "actor": "user-1",
        "action": "identity:read",
        "resource": "identity/user-1",
        "outcome": "allowed",
        "request_id": "req-1",
        "source_ip": "198.51.100.7",
    }
    assert "reason" not in fields  # absent, so not hashed: a field added later changes no old entry's hash
    assert entry_from_fields(fields) == entry()


def test_an_entry_without_a_new_optional_field_keeps_its_canonical_form() -> None:
    before = canonical(entry_fields(entry(reason=None)))
    after = canonical({**entry_fields(entry(reason=None)), "future_field": None})

    assert before == after


def test_the_fingerprint_ignores_times_and_names_the_facts() -> None:
    later = entry(at=datetime(2025, 11, 20, 9, 16, tzinfo=UTC))

    assert fingerprint([entry()]) == fingerprint([later])  # a retried invocation: the same item
    assert fingerprint([entry()]) != fingerprint([entry(outcome=Outcome.DENIED)])
    assert fingerprint([entry()]) != fingerprint([entry(), entry(resource="identity/user-2")])


@pytest.mark.parametrize("tenant", ["acme", "globex", "_gateway"])
def test_the_inbox_item_holds_every_entry_under_a_sharded_key(tenant: str) -> None:
    entries = [entry(tenant=tenant, resource=f"r/{n}") for n in range(3)]

    item = inbox_item(tenant, entries, AT)

    prefix, shard = item["pk"]["S"].rsplit("#", 1)
    assert prefix == f"T#{tenant}#AUDITIN" and 0 <= int(shard) < INBOX_SHARDS
    assert item["sk"]["S"] == f"E#{fingerprint(entries)}" and item["count"] == {"N": "3"}
    assert [e["resource"] for e in entries_of_item(item)] == ["r/0", "r/1", "r/2"]


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
