"""The messages table's item layout: one place for every key and the message <-> item mapping.

    Message        pk T#<t>#MSG#<message id>   sk MSG           index attributes below
    Search term    pk T#<t>#TERM#<digest>      sk <at>          message_id (a keyed digest of one token)
    Policy         pk T#<t>#POLICY             sk POLICY

A message is one item: its facts, its status history (ids, codes, times) and its sealed content; every index a
search filter needs is a global secondary index over it, each partitioned by tenant and one filter value and
sorted by `at` (`<first event time>#<message id>`, so a date range is a key condition and the order is stable):

    ByTime         tenant            at
    ByCandidate    candidate_key     at     <t>#<candidate id>
    ByRequisition  requisition_key   at     <t>#<requisition id>
    ByStatus       status_key        at     <t>#<status>
    ByChannel      channel_key       at     <t>#<channel>
    ByThread       thread_key        at     <t>#<thread id>

A message without a candidate (or requisition, or thread) is simply absent from that index (sparse).

An archived message (functions/messages/logic/tiers.py) keeps its item as a stub without content (the same keys,
index attributes and history), plus `tier` (`warm`, `cold`) and `archive_key` (its object in the archive bucket,
when it had content to move); a hot message has neither attribute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.messages.models.message import Channel, Direction, HistoryEntry, MessageState, Party, Status
from shared import clock
from shared.keys import tenant_key

MESSAGE_SK = "MSG"
INDEXES: dict[str, tuple[str, str]] = {
    "ByTime": ("tenant", "at"),
    "ByCandidate": ("candidate_key", "at"),
    "ByRequisition": ("requisition_key", "at"),
    "ByStatus": ("status_key", "at"),
    "ByChannel": ("channel_key", "at"),
    "ByThread": ("thread_key", "at"),
}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def message_key(tenant: str, message_id: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "MSG", message_id), MESSAGE_SK)


def term_pk(tenant: str, digest: str) -> str:
    return tenant_key(tenant, "TERM", digest)


def policy_key(tenant: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "POLICY"), "POLICY")


def at_of(state: MessageState) -> str:
    return f"{clock.isoformat(state.first_at)}#{state.message_id}"


def index_value(tenant: str, value: str) -> str:
    return f"{tenant}#{value}"


def _s(value: str | None) -> dict[str, Any] | None:
    return {"S": value} if value else None


def _party(party: Party) -> dict[str, Any]:
    attrs: dict[str, Any] = {"address": {"S": party.address}}
    if party.name:
        attrs["name"] = {"S": party.name}
    return {"M": attrs}


def _party_from(attr: dict[str, Any]) -> Party:
    value = attr["M"]
    return Party(address=value["address"]["S"], name=value.get("name", {}).get("S"))


def _entry(entry: HistoryEntry) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "id": {"S": entry.event_id},
        "status": {"S": entry.status.value},
        "at": {"S": clock.isoformat(entry.at)},
        "provider": {"S": entry.provider},
        "event": {"S": entry.provider_event},
    }
    if entry.detail:
        attrs["detail"] = {"S": entry.detail}
    if entry.attempt is not None:
        attrs["attempt"] = {"N": str(entry.attempt)}
    if entry.permanent:
        attrs["permanent"] = {"BOOL": True}
    return {"M": attrs}


def _entry_from(attr: dict[str, Any]) -> HistoryEntry:
    v = attr["M"]
    return HistoryEntry(
        event_id=v["id"]["S"],
        status=Status(v["status"]["S"]),
        at=_time(v["at"]["S"]),
        provider=v["provider"]["S"],
        provider_event=v["event"]["S"],
        detail=v.get("detail", {}).get("S"),
        attempt=int(v["attempt"]["N"]) if "attempt" in v else None,
        permanent=bool(v.get("permanent", {}).get("BOOL", False)),
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def to_item(state: MessageState) -> dict[str, Any]:
    """The whole message item, with the index attributes of the filters it can be found by."""
    t = state.tenant
    attrs: dict[str, dict[str, Any] | None] = {
        **message_key(t, state.message_id),
        "tenant": {"S": t},
        "message_id": {"S": state.message_id},
        "channel": {"S": state.channel.value},
        "direction": {"S": state.direction.value},
        "provider": {"S": state.provider},
        "message_key": {"S": state.message_key},
        "status": {"S": state.status.value},
        "first_at": {"S": clock.isoformat(state.first_at)},
        "last_at": {"S": clock.isoformat(state.last_at)},
        "history": {"L": [_entry(e) for e in state.history]},
        "rfc_message_id": _s(state.rfc_message_id),
        "in_reply_to": _s(state.in_reply_to),
        "references": {"L": [{"S": r} for r in state.references]} if state.references else None,
        "thread_id": _s(state.thread_id),
        "candidate_id": _s(state.candidate_id),
        "requisition_id": _s(state.requisition_id),
        "sender": _party(state.sender) if state.sender else None,
        "recipients": {"L": [_party(p) for p in state.recipients]} if state.recipients else None,
        "sealed_subject": _s(state.sealed_subject),
        "sealed_body": _s(state.sealed_body),
        "content_hash": _s(state.content_hash),
        "redacted_at": _s(clock.isoformat(state.redacted_at) if state.redacted_at else None),
        "holds": {"SS": sorted(state.holds)} if state.holds else None,
        "dropped_events": {"N": str(state.dropped_events)} if state.dropped_events else None,
        "version": {"N": str(state.version)},
        "tier": _s(state.tier),  # absent on a hot message, as on every item written before the tiers
        "archive_key": _s(state.archive_key),
        # index attributes
        "at": {"S": at_of(state)},
        "status_key": {"S": index_value(t, state.status.value)},
        "channel_key": {"S": index_value(t, state.channel.value)},
        "candidate_key": _s(index_value(t, state.candidate_id) if state.candidate_id else None),
        "requisition_key": _s(index_value(t, state.requisition_id) if state.requisition_id else None),
        "thread_key": _s(index_value(t, state.thread_id) if state.thread_id else None),
    }
    return {name: attr for name, attr in attrs.items() if attr is not None}


def from_item(item: dict[str, Any]) -> MessageState:
    def s(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    redacted = s("redacted_at")
    return MessageState(
        tenant=item["tenant"]["S"],
        message_id=item["message_id"]["S"],
        channel=Channel(item["channel"]["S"]),
        direction=Direction(item["direction"]["S"]),
        provider=item["provider"]["S"],
        message_key=item["message_key"]["S"],
        status=Status(item["status"]["S"]),
        first_at=_time(item["first_at"]["S"]),
        last_at=_time(item["last_at"]["S"]),
        history=[_entry_from(a) for a in item.get("history", {}).get("L", [])],
        rfc_message_id=s("rfc_message_id"),
        in_reply_to=s("in_reply_to"),
        references=tuple(a["S"] for a in item.get("references", {}).get("L", [])),
        thread_id=s("thread_id"),
        candidate_id=s("candidate_id"),
        requisition_id=s("requisition_id"),
        sender=_party_from(item["sender"]) if "sender" in item else None,
        recipients=tuple(_party_from(a) for a in item.get("recipients", {}).get("L", [])),
        sealed_subject=s("sealed_subject"),
        sealed_body=s("sealed_body"),
        content_hash=s("content_hash"),
        redacted_at=_time(redacted) if redacted else None,
        holds=frozenset(item.get("holds", {}).get("SS", [])),
        dropped_events=int(item.get("dropped_events", {}).get("N", "0")),
        version=int(item["version"]["N"]),
        tier=s("tier"),
        archive_key=s("archive_key"),
    )
