"""Legal holds on messages, redaction and erasure, on in-memory fakes of the ports (functions/messages/logic/
holds.py, redaction.py, erasure.py): what a hold covers and marks, what a redaction removes and keeps, what an
erasure does when a hold keeps part of it, and that every action leaves its audit entry."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.messages.dal.items import at_of, index_value
from functions.messages.dal.messages import IndexQuery, Page, StaleWrite
from functions.messages.logic.blind_index import query_tokens
from functions.messages.logic.holds import ActiveHolds, HoldRequest, get_hold, list_holds, place_hold, release_hold
from functions.messages.logic.redaction import ContentTools, remove_content, term_ats
from functions.messages.models.holds_events import (
    MessageContentErased,
    MessageHoldChanged,
    PurgedKind,
    PurgeReason,
    RecordPurged,
)
from functions.messages.models.holds_io import MessageHold, MessageHoldSubject, PendingErasure
from functions.messages.models.message import Channel, Direction, HistoryEntry, MessageState, Party, Status
from shared import clock
from shared.audit import Outcome
from shared.auth import Actor, Role
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from tests.conftest import make_lambda_context, sample_event
from tests.fakes import FakeAuditLog

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=90)
OFFICER = Actor.user("acme", "officer-1", frozenset({Role.COMPLIANCE_OFFICER}))
RECRUITER = Actor.user("acme", "recruiter-1", frozenset({Role.RECRUITER}))
OTHER_OFFICER = Actor.user("globex", "officer-9", frozenset({Role.COMPLIANCE_OFFICER}))
ERASER = Actor.system("messages-erasure", "acme")


@pytest.fixture(autouse=True)
def _frozen_clock() -> Any:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


# --- fakes ------------------------------------------------------------------------------------------------------------


class FakeMessages:
    """The MessageStore port in memory, with the adapter's version check and index order."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], MessageState] = {}
        self.stale_once: set[str] = set()  # message ids whose next save meets a concurrent write

    def add(self, state: MessageState) -> MessageState:
        stored = replace(state, version=1)
        self.items[(state.tenant, state.message_id)] = stored
        return stored

    def load(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], MessageState]:
        return {k: self.items[k] for k in keys if k in self.items}

    def get(self, tenant: str, message_id: str) -> MessageState | None:
        return self.items.get((tenant, message_id))

    def save(self, state: MessageState) -> MessageState:
        current = self.items.get((state.tenant, state.message_id))
        if state.message_id in self.stale_once and current is not None:
            self.stale_once.discard(state.message_id)
            self.items[(state.tenant, state.message_id)] = replace(current, version=current.version + 1)
            raise StaleWrite(state.message_id)
        if (current.version if current else 0) != state.version:
            raise StaleWrite(state.message_id)
        stored = replace(state, version=state.version + 1)
        self.items[(state.tenant, state.message_id)] = stored
        return stored

    def put_terms(self, state: MessageState, digests: Sequence[str]) -> None:
        raise AssertionError("not used here")

    def query(self, tenant: str, query: IndexQuery, *, limit: int, cursor: str | None, filters: dict[str, str]) -> Page:
        attribute = {"ByCandidate": "candidate_id", "ByRequisition": "requisition_id"}[query.index]
        hits = sorted(
            (
                m
                for (t, _), m in self.items.items()
                if t == tenant
                and index_value(t, getattr(m, attribute) or "") == query.partition
                and all(getattr(m, a) == v for a, v in filters.items())
            ),
            key=at_of,
            reverse=query.newest_first,
        )
        start = int(cursor or 0)
        page = hits[start : start + limit]
        more = start + limit < len(hits)
        return Page(page, str(start + limit) if more else None, len(page))

    def mark(self, tenant: str, message_ids: Iterable[str], hold_id: str, *, add: bool) -> int:
        written = 0
        for message_id in message_ids:
            current = self.items.get((tenant, message_id))
            if current is None:
                continue
            holds = current.holds | {hold_id} if add else current.holds - {hold_id}
            self.items[(tenant, message_id)] = replace(current, holds=holds, version=current.version + 1)
            written += 1
        return written


class FakeHolds:
    """The HoldStore and ErasureLedger ports in memory; marks land on the fake messages."""

    def __init__(self, messages: FakeMessages) -> None:
        self.messages = messages
        self.holds: dict[tuple[str, str], MessageHold] = {}
        self.pending: dict[tuple[str, str, str, str | None], PendingErasure] = {}
        self.active_reads = 0

    def get(self, tenant: str, hold_id: str) -> MessageHold | None:
        return self.holds.get((tenant, hold_id))

    def create(self, hold: MessageHold) -> None:
        from functions.messages.dal.holds import HoldExists

        if (hold.tenant, hold.hold_id) in self.holds:
            raise HoldExists(hold.hold_id)
        self.holds[(hold.tenant, hold.hold_id)] = hold

    def save_release(self, hold: MessageHold) -> bool:
        if self.holds[(hold.tenant, hold.hold_id)].released_at is not None:
            return False
        self.holds[(hold.tenant, hold.hold_id)] = hold
        return True

    def save_progress(self, hold: MessageHold) -> None:
        current = self.holds[(hold.tenant, hold.hold_id)]
        self.holds[(hold.tenant, hold.hold_id)] = replace(
            current, messages_held=hold.messages_held, fanout_cursor=hold.fanout_cursor
        )

    def page(
        self, tenant: str, *, active_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[MessageHold], str | None]:
        found = sorted(
            (h for (t, _), h in self.holds.items() if t == tenant and (h.active or not active_only)),
            key=lambda h: h.hold_id,
        )
        after = [h for h in found if cursor is None or h.hold_id > cursor]
        return after[:limit], (after[limit - 1].hold_id if len(after) > limit else None)

    def active(self, tenant: str) -> list[MessageHold]:
        self.active_reads += 1
        return [h for (t, _), h in self.holds.items() if t == tenant and h.active]

    def mark(self, tenant: str, message_ids: Iterable[str], hold_id: str, *, add: bool) -> int:
        return self.messages.mark(tenant, message_ids, hold_id, add=add)

    def put_pending(self, pending: PendingErasure) -> None:
        key = (pending.tenant, pending.record_kind, pending.record_id, pending.vacancy_id)
        self.pending[key] = pending

    def pending_blocked_by(self, tenant: str, hold_id: str) -> list[PendingErasure]:
        return [p for p in self.pending.values() if p.tenant == tenant and hold_id in p.holds]

    def delete_pending(self, tenant: str, record_kind: str, record_id: str, vacancy_id: str | None) -> None:
        self.pending.pop((tenant, record_kind, record_id, vacancy_id), None)


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, events: Sequence[Any]) -> None:
        self.events.extend(events)


class SealedAsText:
    """Sealing is `sealed:<text>` here; a real FieldCipher value is opaque."""

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        assert sealed.startswith("sealed:")
        return sealed.removeprefix("sealed:")


class TwoKeyIndex:
    """The blind index with two key versions held: each token has two digests."""

    def query(self, tenant: str, query: str) -> list[list[str]]:
        return [[f"h1:{token}", f"h2:{token}"] for token in query_tokens(query)]


class FakeTerms:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], str] = {}  # (tenant, digest, at) -> message id

    def put(self, state: MessageState, digests: Iterable[str], at: str | None = None) -> None:
        for digest in digests:
            self.items[(state.tenant, digest, at or at_of(state))] = state.message_id

    def delete_terms(self, tenant: str, message_id: str, digests: Sequence[str], ats: Sequence[str]) -> int:
        gone = [
            k for k, m in self.items.items() if k[0] == tenant and k[1] in digests and k[2] in ats and m == message_id
        ]
        for k in gone:
            del self.items[k]
        return len(gone)

    def of(self, message_id: str) -> list[tuple[str, str, str]]:
        return [k for k, m in self.items.items() if m == message_id]


def message(
    message_id: str,
    *,
    tenant: str = "acme",
    candidate: str | None = "cand-1",
    requisition: str | None = "req-1",
    minutes: int = 0,
    subject: str | None = None,
    body: str | None = None,
) -> MessageState:
    at = NOW - timedelta(days=1) + timedelta(minutes=minutes)
    return MessageState(
        tenant=tenant,
        message_id=message_id,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        provider="ats",
        message_key=message_id,
        status=Status.DELIVERED,
        first_at=at,
        last_at=at + timedelta(seconds=30),
        history=[
            HistoryEntry(f"{message_id}-sent", Status.SENT, at, "ats", "sent"),
            HistoryEntry(f"{message_id}-delivered", Status.DELIVERED, at + timedelta(seconds=30), "ses", "Delivery"),
        ],
        candidate_id=candidate,
        requisition_id=requisition,
        sender=Party("recruiter@acme.example"),
        recipients=(Party("zoe@example.com", "Zoë"),),
        sealed_subject=f"sealed:{subject}" if subject else None,
        sealed_body=f"sealed:{body}" if body else None,
        content_hash="c0ffee" if subject or body else None,
    )


class World:
    def __init__(self) -> None:
        self.messages = FakeMessages()
        self.holds = FakeHolds(self.messages)
        self.audit = FakeAuditLog()
        self.publisher = FakePublisher()
        self.terms = FakeTerms()
        self.tools = ContentTools(opener=SealedAsText(), index=TwoKeyIndex(), terms=self.terms)
        self.requests = 0

    def rid(self) -> str:
        self.requests += 1
        return f"req-{self.requests}"

    def with_terms(self, state: MessageState) -> MessageState:
        stored = self.messages.add(state)
        subject = state.sealed_subject.removeprefix("sealed:") if state.sealed_subject else ""
        body = state.sealed_body.removeprefix("sealed:") if state.sealed_body else ""
        self.terms.put(stored, [d for ds in TwoKeyIndex().query("acme", f"{subject}\n{body}") for d in ds[:1]])
        return stored

    def place(
        self, hold_id: str, kind: MessageHoldSubject, subject_id: str, *, actor: Actor = OFFICER, **options: Any
    ) -> tuple[MessageHold, bool]:
        return place_hold(
            actor,
            hold_id,
            HoldRequest(kind, subject_id, "litigation 2026-17", "legal", LATER),
            holds=self.holds,
            messages=self.messages,
            audit=self.audit,
            publisher=self.publisher,
            request_id=self.rid(),
            **options,
        )

    def release(self, hold_id: str, **options: Any) -> MessageHold:
        return release_hold(
            OFFICER,
            hold_id,
            "settled",
            holds=self.holds,
            messages=self.messages,
            audit=self.audit,
            publisher=self.publisher,
            request_id=self.rid(),
            **options,
        )

    def held(self, message_id: str) -> frozenset[str]:
        found = self.messages.get("acme", message_id)
        assert found is not None
        return found.holds


@pytest.fixture
def world() -> World:
    return World()


# --- holds ------------------------------------------------------------------------------------------------------------


def test_a_candidate_hold_marks_every_message_of_the_candidate_page_by_page(world: World) -> None:
    for i in range(5):
        world.messages.add(message(f"m{i}", minutes=i))
    world.messages.add(message("other", candidate="cand-2"))

    hold, created = world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-1", page_size=2)

    assert created and hold.active and hold.messages_held == 5 and hold.fanout_cursor is None
    assert all(world.held(f"m{i}") == {"H-1"} for i in range(5)) and world.held("other") == frozenset()
    (event,) = world.publisher.events
    assert isinstance(event, MessageHoldChanged) and event.hold_id == "H-1" and event.active
    (entry,) = world.audit.entries
    assert (entry.action, entry.resource, entry.outcome) == ("messages:legal-hold", "message-hold/H-1:place", "allowed")


def test_a_fan_out_that_runs_out_of_time_keeps_its_place_and_the_same_request_goes_on(world: World) -> None:
    for i in range(5):
        world.messages.add(message(f"m{i}", requisition="req-7", minutes=i))

    first, _ = world.place("H-2", MessageHoldSubject.REQUISITION, "req-7", page_size=2, budget_seconds=0)
    assert first.fanout_cursor is not None and first.messages_held == 2
    assert world.holds.get("acme", "H-2") == first  # where it stopped is stored with the hold

    again, created = world.place("H-2", MessageHoldSubject.REQUISITION, "req-7", page_size=2, budget_seconds=0)
    last, _ = world.place("H-2", MessageHoldSubject.REQUISITION, "req-7", page_size=2, budget_seconds=0)

    assert not created and again.messages_held == 4 and again.fanout_cursor is not None
    assert last.messages_held == 5 and last.fanout_cursor is None
    assert all(world.held(f"m{i}") == {"H-2"} for i in range(5))


def test_placing_is_idempotent_and_an_id_is_never_reused_for_other_facts(world: World) -> None:
    world.messages.add(message("m1"))
    world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-1")
    hold, created = world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-1")
    assert not created and hold.messages_held == 1

    with pytest.raises(Conflict, match="other facts"):
        world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-2")
    world.release("H-1")
    with pytest.raises(Conflict, match="released"):
        world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-1")


def test_a_message_hold_needs_a_message_of_the_tenant(world: World) -> None:
    world.messages.add(message("theirs", tenant="globex"))
    with pytest.raises(NotFound):
        world.place("H-1", MessageHoldSubject.MESSAGE, "theirs")
    with pytest.raises(NotFound):
        world.place("H-1", MessageHoldSubject.MESSAGE, "nowhere")
    assert world.holds.holds == {}

    world.messages.add(message("mine"))
    hold, _ = world.place("H-1", MessageHoldSubject.MESSAGE, "mine")
    assert hold.messages_held == 1 and world.held("mine") == {"H-1"}


def test_a_hold_on_a_candidate_without_messages_yet_is_placed(world: World) -> None:
    hold, created = world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-new")
    assert created and hold.messages_held == 0


@pytest.mark.parametrize(
    ("hold_id", "review_at", "problem"),
    [("bad id", LATER, "hold_id"), ("H-1", NOW - timedelta(seconds=1), "review_at")],
)
def test_a_malformed_id_or_a_past_review_date_is_a_400(
    world: World, hold_id: str, review_at: datetime, problem: str
) -> None:
    with pytest.raises(BadRequest, match=problem):
        place_hold(
            OFFICER,
            hold_id,
            HoldRequest(MessageHoldSubject.CANDIDATE, "cand-1", "r", "legal", review_at),
            holds=world.holds,
            messages=world.messages,
            audit=world.audit,
            publisher=world.publisher,
            request_id="r-1",
        )


def test_a_recruiter_may_not_place_a_hold_and_the_refusal_is_audited(world: World) -> None:
    with pytest.raises(Forbidden):
        world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-1", actor=RECRUITER)
    (entry,) = world.audit.entries
    assert entry.outcome is Outcome.DENIED and entry.reason == "missing role"
    assert world.holds.holds == {}


def test_another_tenants_hold_is_a_404_to_read_and_to_release(world: World) -> None:
    world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-1")
    with pytest.raises(NotFound):
        get_hold(OTHER_OFFICER, "H-1", holds=world.holds, audit=world.audit, request_id="r")
    with pytest.raises(NotFound):
        release_hold(
            OTHER_OFFICER,
            "H-1",
            "no",
            holds=world.holds,
            messages=world.messages,
            audit=world.audit,
            publisher=world.publisher,
            request_id="r",
        )
    assert world.holds.get("acme", "H-1").active  # type: ignore[union-attr]


def test_releasing_unmarks_publishes_and_a_repeat_returns_the_first_release(world: World) -> None:
    world.messages.add(message("m1"))
    world.messages.add(message("m2", minutes=1))
    world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-1")
    world.place("H-2", MessageHoldSubject.MESSAGE, "m1")

    released = world.release("H-1")
    clock.freeze(NOW + timedelta(hours=1))
    again = world.release("H-1")

    assert not released.active and released.released_by == "user:officer-1" and released.messages_held == 0
    assert again.released_at == released.released_at
    assert world.held("m1") == {"H-2"} and world.held("m2") == frozenset()
    assert [(e.hold_id, e.active) for e in world.publisher.events] == [
        ("H-1", True),
        ("H-2", True),
        ("H-1", False),
        ("H-1", False),
    ]


def test_holds_are_listed_active_by_default_in_pages(world: World) -> None:
    for hold_id in ("H-1", "H-2", "H-3"):
        world.place(hold_id, MessageHoldSubject.CANDIDATE, "cand-1")
    world.release("H-2")

    def page(**options: Any) -> tuple[list[str], str | None]:
        holds, cursor = list_holds(OFFICER, holds=world.holds, audit=world.audit, request_id="r", **options)
        return [h.hold_id for h in holds], cursor

    assert page(status="active", limit=50, cursor=None) == (["H-1", "H-3"], None)
    first, cursor = page(status="all", limit=2, cursor=None)
    assert first == ["H-1", "H-2"] and page(status="all", limit=2, cursor=cursor) == (["H-3"], None)
    with pytest.raises(BadRequest):
        page(status="some", limit=2, cursor=None)


def test_the_ingest_consumer_gets_the_active_holds_of_a_new_messages_candidate_and_requisition(world: World) -> None:
    world.messages.add(message("m1"))
    world.place("H-cand", MessageHoldSubject.CANDIDATE, "cand-1")
    world.place("H-req", MessageHoldSubject.REQUISITION, "req-9")
    world.place("H-msg", MessageHoldSubject.MESSAGE, "m1")
    world.place("H-gone", MessageHoldSubject.CANDIDATE, "cand-1")
    world.release("H-gone")
    active = ActiveHolds(world.holds)
    reads = world.holds.active_reads

    assert active.holds_for("acme", "cand-1", "req-9") == {"H-cand", "H-req"}
    assert active.holds_for("acme", "cand-1", None) == {"H-cand"}
    assert active.holds_for("acme", "cand-2", "req-1") == frozenset()
    assert active.holds_for("acme", None, None) == frozenset()
    assert active.holds_for("globex", "cand-1", "req-9") == frozenset()
    assert world.holds.active_reads == reads + 2  # one read per tenant for the whole batch


def test_a_hold_covers_a_message_whether_or_not_it_was_marked_yet(world: World) -> None:
    unmarked = world.messages.add(message("late"))  # stored while the fan-out was running: never marked
    world.place("H-1", MessageHoldSubject.CANDIDATE, "cand-2")
    world.holds.holds[("acme", "H-0")] = replace(world.holds.holds[("acme", "H-1")], hold_id="H-0", subject_id="cand-1")
    stale = replace(unmarked, holds=frozenset({"H-released-long-ago"}))

    assert ActiveHolds(world.holds).covering(unmarked) == {"H-0"}
    assert ActiveHolds(world.holds).covering(stale) == {"H-0"}  # a stale mark protects nothing


# --- redaction ------------------------------------------------------------------------------------------------------


def test_removing_content_deletes_the_terms_under_every_key_and_time_and_keeps_the_metadata(world: World) -> None:
    state = world.with_terms(message("m1", subject="Entretien à Zürich", body="Lundi à dix heures"))
    # An event that happened earlier arrived after the content: the terms stay under the first `at`.
    moved = replace(state, first_at=state.first_at - timedelta(minutes=5))
    moved.history.insert(0, HistoryEntry("m1-queued", Status.QUEUED, moved.first_at, "ats", "queued"))
    world.messages.items[("acme", "m1")] = moved
    world.terms.put(moved, ["h2:zurich"])  # indexed again under the rotated key, at the new `at`
    assert len(world.terms.of("m1")) == 6  # entretien zurich lundi dix heures, and zurich again

    removal = remove_content(moved, store=world.messages, tools=world.tools)

    stored = world.messages.get("acme", "m1")
    assert stored is not None and removal.changed and removal.content_removed and removal.terms_removed == 6
    assert world.terms.of("m1") == []
    assert stored.sealed_subject is None and stored.sealed_body is None and stored.redacted_at == NOW
    assert stored.content_hash == "c0ffee" and stored.recipients == state.recipients
    assert stored.history == moved.history and stored.candidate_id == "cand-1"


def test_term_ats_names_the_current_at_and_every_event_time() -> None:
    state = message("m1")
    assert term_ats(state) == [at_of(state), f"{clock.isoformat(state.history[1].at)}#m1"]


def test_removing_content_starts_over_after_a_concurrent_write(world: World) -> None:
    state = world.with_terms(message("m1", subject="Offre", body="Bienvenue"))
    world.messages.stale_once.add("m1")

    removal = remove_content(state, store=world.messages, tools=world.tools)

    assert removal.changed and world.messages.get("acme", "m1").sealed_body is None  # type: ignore[union-attr]
    assert world.terms.of("m1") == []


def test_a_message_without_content_is_marked_so_that_none_is_kept_later(world: World) -> None:
    state = world.messages.add(message("m1"))
    first = remove_content(state, store=world.messages, tools=world.tools)
    second = remove_content(first.state, store=world.messages, tools=world.tools)

    assert first.changed and not first.content_removed and first.state.redacted_at == NOW
    assert not second.changed and second.state.version == first.state.version


def redact(world: World, message_id: str, actor: Actor = OFFICER) -> Any:
    from functions.messages.logic.redaction import redact_message

    return redact_message(
        actor,
        message_id,
        "DSAR 2026-114",
        store=world.messages,
        holds=ActiveHolds(world.holds),
        tools=world.tools,
        audit=world.audit,
        request_id=world.rid(),
    )


def test_a_compliance_officer_redacts_a_message_and_the_reason_is_audited(world: World) -> None:
    world.with_terms(message("m1", subject="Offre", body="Salaire 52000"))

    removal = redact(world, "m1")
    again = redact(world, "m1")

    assert removal.content_removed and removal.state.redacted_at == NOW and removal.state.content_hash == "c0ffee"
    assert not again.changed and again.state.redacted_at == NOW
    assert [(e.action, e.resource, e.outcome.value, e.reason) for e in world.audit.entries] == [
        ("messages:redact", "message/m1:redact", "allowed", None),
        ("messages:redact", "message/m1:redacted", "allowed", "DSAR 2026-114"),
        ("messages:redact", "message/m1:redact", "allowed", None),
    ]


def test_a_held_message_is_not_redacted(world: World) -> None:
    world.with_terms(message("m1", subject="Offre", body="Salaire"))
    world.place("H-1", MessageHoldSubject.REQUISITION, "req-1")

    with pytest.raises(Conflict, match="H-1"):
        redact(world, "m1")

    assert world.messages.get("acme", "m1").sealed_body == "sealed:Salaire"  # type: ignore[union-attr]
    denied = world.audit.entries[-1]
    assert denied.outcome is Outcome.DENIED and "H-1" in (denied.reason or "")


def test_redaction_is_for_compliance_officers_and_another_tenants_message_is_a_404(world: World) -> None:
    world.messages.add(message("m1", subject="Offre"))
    world.messages.add(message("theirs", tenant="globex", subject="Offer"))
    with pytest.raises(Forbidden):
        redact(world, "m1", actor=RECRUITER)
    with pytest.raises(NotFound):
        redact(world, "theirs")
    assert world.messages.get("globex", "theirs").sealed_subject == "sealed:Offer"  # type: ignore[union-attr]


# --- erasure --------------------------------------------------------------------------------------------------------


def purge(kind: PurgedKind, record_id: str, *, person: str | None = "cand-1", vacancy: str | None = None) -> Any:
    return RecordPurged(
        tenant="acme",
        record_kind=kind,
        record_id=record_id,
        vacancy_id=vacancy,
        person_id=person,
        reason=PurgeReason.SCHEDULE,
        request_id="2026-11-27",
    )


def ports(world: World) -> Any:
    from functions.messages.logic.erasure import ErasurePorts

    return ErasurePorts(
        messages=world.messages, holds=world.holds, tools=world.tools, audit=world.audit, publisher=world.publisher
    )


@pytest.mark.parametrize(
    ("event", "scope"),
    [
        (purge(PurgedKind.PERSON, "cand-1"), ("cand-1", None)),
        (purge(PurgedKind.PERSON, "cand-1", person=None), ("cand-1", None)),
        (purge(PurgedKind.APPLICATION, "A-1", vacancy="req-1"), ("cand-1", "req-1")),
        (purge(PurgedKind.CANDIDATE, "cand-1", vacancy="req-1"), ("cand-1", "req-1")),
        (purge(PurgedKind.REGISTRATION, "R-1", vacancy="pool-1"), ("cand-1", "pool-1")),
        (purge(PurgedKind.APPLICATION, "A-1"), None),
        (purge(PurgedKind.APPLICATION, "A-1", person=None, vacancy="req-1"), None),
        (purge(PurgedKind.VACANCY, "req-1", person=None, vacancy="req-1"), None),
    ],
)
def test_the_messages_a_purge_covers(event: RecordPurged, scope: tuple[str, str | None] | None) -> None:
    from functions.messages.logic.erasure import scope_of

    found = scope_of(event)
    assert (None if found is None else (found.person_id, found.vacancy_id)) == scope


def test_an_application_purge_erases_that_requisitions_messages_only(world: World) -> None:
    from functions.messages.logic.erasure import erase_for_purge

    world.with_terms(message("m1", subject="Offre", body="Poste A"))
    world.with_terms(message("m2", requisition="req-2", subject="Offre", body="Poste B"))
    event = purge(PurgedKind.APPLICATION, "A-1", vacancy="req-1")

    outcome = erase_for_purge(event, ERASER, ports(world))

    assert outcome is not None and outcome.erased == 1 and not outcome.held
    assert world.messages.get("acme", "m1").sealed_body is None  # type: ignore[union-attr]
    assert world.messages.get("acme", "m2").sealed_body == "sealed:Poste B"  # type: ignore[union-attr]
    (erased,) = world.publisher.events
    assert isinstance(erased, MessageContentErased) and erased.messages == 1 and erased.purge_event_id == event.event_id
    (entry,) = world.audit.entries
    assert (entry.actor, entry.action, entry.outcome) == ("system:messages-erasure", "messages:erase", "allowed")
    assert entry.resource == "messages-of/application/A-1@req-1:erase" and entry.request_id == event.event_id


def test_a_held_message_keeps_its_content_and_the_release_finishes_the_erasure(world: World) -> None:
    from functions.messages.logic.erasure import erase_for_purge, resume_after_release

    world.with_terms(message("m1", subject="Offre", body="Poste A"))
    world.with_terms(message("m2", requisition="req-2", subject="Offre", body="Poste B"))
    world.place("H-1", MessageHoldSubject.REQUISITION, "req-2")
    world.publisher.events.clear()
    event = purge(PurgedKind.PERSON, "cand-1")

    outcome = erase_for_purge(event, ERASER, ports(world))

    assert outcome is not None and outcome.erased == 1 and outcome.held == {"m2": {"H-1"}}
    assert world.messages.get("acme", "m2").sealed_body == "sealed:Poste B"  # type: ignore[union-attr]
    assert world.publisher.events == []  # held back: nothing published
    assert [(e.outcome.value, e.reason) for e in world.audit.entries[-2:]] == [
        ("allowed", "content of 1 message(s) erased"),
        ("denied", "1 message(s) kept under legal hold(s) H-1"),
    ]
    (pending,) = world.holds.pending.values()
    assert pending.holds == {"H-1"} and pending.purge_event_id == event.event_id

    world.release("H-1")
    (changed,) = world.publisher.events
    world.publisher.events.clear()
    (resumed,) = resume_after_release(changed, ERASER, ports(world))

    assert resumed.erased == 1 and not resumed.held and world.holds.pending == {}
    assert world.messages.get("acme", "m2").sealed_body is None  # type: ignore[union-attr]
    (erased,) = world.publisher.events
    assert isinstance(erased, MessageContentErased) and erased.messages == 2 and erased.purge_event_id == event.event_id
    assert world.terms.of("m1") == world.terms.of("m2") == []


def test_a_purge_delivered_twice_erases_nothing_more_and_publishes_the_same_event(world: World) -> None:
    from functions.messages.logic.erasure import erase_for_purge

    world.with_terms(message("m1", subject="Offre", body="Poste A"))
    event = purge(PurgedKind.PERSON, "cand-1")
    first = erase_for_purge(event, ERASER, ports(world))
    second = erase_for_purge(event, ERASER, ports(world))

    assert first is not None and second is not None and (first.erased, second.erased) == (1, 0)
    assert second.unchanged == 1
    assert [e.event_id for e in world.publisher.events] == [world.publisher.events[0].event_id] * 2


def test_a_hold_placed_does_not_resume_anything(world: World) -> None:
    from functions.messages.logic.erasure import resume_after_release

    placed = MessageHoldChanged(tenant="acme", hold_id="H-1", held_kind=MessageHoldSubject.CANDIDATE, active=True)
    assert resume_after_release(placed, ERASER, ports(world)) == []


def test_the_consumer_takes_the_sample_batch_of_record_purged(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.messages.handlers import on_record_purged
    from shared.observability import metrics

    for name, value in {"POWERTOOLS_SERVICE_NAME": "ats", "POWERTOOLS_TRACE_DISABLED": "true", "STAGE": "t"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(metrics, "namespace", "AtsCompliance")
    monkeypatch.setattr(on_record_purged, "ports", ports(world))
    world.with_terms(message("m1", candidate="P-88", requisition="REQ-1042", subject="Offre", body="Poste"))
    world.with_terms(message("m2", candidate="P-88", requisition="REQ-7", subject="Relance", body="Poste"))
    batch = sample_event("sqs_eventbridge_record_purged.json")

    response = on_record_purged.lambda_handler(batch, make_lambda_context("EraseOnPurge"))

    assert response == {"batchItemFailures": []}
    assert all(m.sealed_body is None for m in world.messages.items.values())
    detail_types = {json.loads(r["body"])["detail-type"] for r in batch["Records"]}
    assert detail_types == {"RecordPurged"} and len(world.publisher.events) == 2
