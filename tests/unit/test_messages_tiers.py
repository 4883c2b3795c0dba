"""The storage tiers of messages on in-memory fakes of the ports (functions/messages/logic/tiers.py): each
transition (hot to warm, warm to cold, hot straight to cold, the deletion at the end), a legal hold keeping a
message from deletion, a rerun changing nothing, bounded pages, a concurrent write, an archived message read back
whole and redacted through the archive; and the policy's periods (functions/messages/logic/policy.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.messages.dal.archive import ArchivedMessages, DuePage, DueRange, archive_key_for, merged, stub_of
from functions.messages.dal.items import at_of
from functions.messages.dal.messages import IndexQuery, Page, StaleWrite
from functions.messages.dal.policy import StalePolicy
from functions.messages.logic.lifecycle import apply, current_status
from functions.messages.logic.policy import TierDays, change_policy
from functions.messages.logic.redaction import ContentTools, remove_content, term_ats
from functions.messages.logic.tiers import (
    JOB,
    PageOutcome,
    Phase,
    TieringPorts,
    TieringState,
    start_tiering,
    tiering_page,
)
from functions.messages.models.holds_io import MessageHold, MessageHoldSubject
from functions.messages.models.message import (
    Channel,
    Direction,
    HistoryEntry,
    MessageState,
    Party,
    Provider,
    ProviderEvent,
    Status,
)
from functions.messages.models.policy import ContentMode, MessagePolicy, Tier
from shared import clock
from shared.auth import Actor, Role
from shared.errors import BadRequest, Conflict
from tests.fakes import FakeAuditLog

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TENANT = "acme"
OFFICER = Actor.user(TENANT, "officer-1", frozenset({Role.COMPLIANCE_OFFICER}))


@pytest.fixture(autouse=True)
def _frozen_clock() -> Any:
    clock.freeze(NOW)
    yield
    clock.freeze(None)


# --- fakes ------------------------------------------------------------------------------------------------------------


class FakeMessages:
    """The MessageStore and TierStore ports in memory: the adapter's version checks, and ByTime oldest first with
    the Query's Limit applied before its filter."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], MessageState] = {}
        self.stale_next: set[str] = set()  # message ids whose next save meets a concurrent write
        self.due_calls: list[int] = []  # items read by each `due`

    def add(self, state: MessageState) -> MessageState:
        stored = replace(state, version=1)
        self.items[(state.tenant, state.message_id)] = stored
        return stored

    # MessageStore
    def load(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], MessageState]:
        return {k: self.items[k] for k in keys if k in self.items}

    def get(self, tenant: str, message_id: str) -> MessageState | None:
        return self.items.get((tenant, message_id))

    def save(self, state: MessageState) -> MessageState:
        current = self.items.get((state.tenant, state.message_id))
        if state.message_id in self.stale_next and current is not None:
            self.stale_next.discard(state.message_id)
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
        raise AssertionError("not used here")

    # TierStore
    def due(self, tenant: str, due: DueRange, *, cursor: dict[str, Any] | None, limit: int) -> DuePage:
        after = cursor["at"]["S"] if cursor else ""
        in_range = sorted(
            (
                m
                for (t, _), m in self.items.items()
                if t == tenant and at_of(m) > after and at_of(m) < due.before
                if due.since is None or at_of(m) >= due.since
            ),
            key=at_of,
        )
        read = in_range[:limit]
        self.due_calls.append(len(read))
        more = len(in_range) > limit
        return DuePage(
            messages=[m for m in read if due.tiers is None or m.tier in due.tiers],
            cursor={"at": {"S": at_of(read[-1])}} if more else None,
            items_read=len(read),
        )

    def delete_stub(self, tenant: str, message_id: str, version: int) -> bool:
        current = self.items.get((tenant, message_id))
        if current is None or current.version != version:
            return False
        del self.items[(tenant, message_id)]
        return True


class FakeArchive:
    """The archive bucket in memory: per key its versions (newest last) with their storage class."""

    def __init__(self) -> None:
        self.objects: dict[str, list[tuple[MessageState, str]]] = {}
        self.calls: list[tuple[str, str]] = []

    def put(self, key: str, state: MessageState, storage_class: str) -> None:
        self.calls.append(("put", key))
        self.objects[key] = [(state, storage_class)]  # the older versions are removed

    def read(self, key: str) -> MessageState | None:
        versions = self.objects.get(key)
        return versions[-1][0] if versions else None

    def storage_class(self, key: str) -> str | None:
        versions = self.objects.get(key)
        return versions[-1][1] if versions else None

    def change_class(self, key: str, storage_class: str) -> None:
        self.calls.append(("copy", key))
        self.objects[key] = [(self.objects[key][-1][0], storage_class)]

    def delete(self, key: str) -> int:
        self.calls.append(("delete", key))
        return len(self.objects.pop(key, []))


class FakePolicies:
    def __init__(self, *policies: MessagePolicy) -> None:
        self.policies = {p.tenant: p for p in policies}

    def get(self, tenant: str) -> MessagePolicy:
        return self.policies.get(tenant, MessagePolicy(tenant=tenant))

    def put(self, policy: MessagePolicy) -> MessagePolicy:
        current = self.policies.get(policy.tenant)
        if (current.version if current else 0) != policy.version:
            raise StalePolicy(policy.tenant)
        stored = replace(policy, version=policy.version + 1)
        self.policies[policy.tenant] = stored
        return stored

    def tenants(self) -> list[str]:
        return sorted(self.policies)


class FakeHolds:
    def __init__(self) -> None:
        self.holds: list[MessageHold] = []

    def active(self, tenant: str) -> list[MessageHold]:
        return [h for h in self.holds if h.tenant == tenant and h.active]

    def hold_candidate(self, candidate_id: str) -> MessageHold:
        hold = MessageHold(
            tenant=TENANT,
            hold_id=f"hold-{candidate_id}",
            subject_kind=MessageHoldSubject.CANDIDATE,
            subject_id=candidate_id,
            reason="claim 2026-17",
            owner="legal",
            review_at=NOW + timedelta(days=3650),
            placed_at=NOW,
            placed_by="user:officer-1",
        )
        self.holds.append(hold)
        return hold


class FakeOpener:
    """Sealed text is `sealed:<text>` here; opening it returns the text."""

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        assert sealed.startswith("sealed:")
        return sealed.removeprefix("sealed:")


class FakeIndex:
    """One digest per word, under one key version."""

    def query(self, tenant: str, query: str) -> list[list[str]]:
        return [[f"d:{word.lower()}"] for word in query.split()]


class FakeTerms:
    def __init__(self) -> None:
        self.items: set[tuple[str, str, str, str]] = set()  # (tenant, digest, at, message id)

    def add(self, state: MessageState, text: str) -> None:
        for digests in FakeIndex().query(state.tenant, text):
            self.items.add((state.tenant, digests[0], at_of(state), state.message_id))

    def delete_terms(self, tenant: str, message_id: str, digests: Sequence[str], ats: Sequence[str]) -> int:
        gone = {item for item in self.items if item[0] == tenant and item[3] == message_id}
        gone = {item for item in gone if item[1] in digests and item[2] in ats}
        self.items -= gone
        return len(gone)


class World:
    def __init__(self, policy: MessagePolicy | None = None) -> None:
        self.messages = FakeMessages()
        self.archive = FakeArchive()
        self.policies = FakePolicies(policy or MessagePolicy(tenant=TENANT, content=ContentMode.FULL, version=1))
        self.holds = FakeHolds()
        self.terms = FakeTerms()
        self.audit = FakeAuditLog()
        self.ports = TieringPorts(
            messages=self.messages,
            tiers=self.messages,
            archive=self.archive,
            policies=self.policies,
            holds=self.holds,
            tools=ContentTools(opener=FakeOpener(), index=FakeIndex(), terms=self.terms),
            audit=self.audit,
        )

    def run(self, *, page_size: int = 100, read_budget: int = 2000) -> list[PageOutcome]:
        """One whole run for every tenant: the workflow's start, then pages until each tenant is done."""
        outcomes = []
        for state in start_tiering(policies=self.policies, execution="exec-1"):
            while not state.done:
                outcome = tiering_page(state, ports=self.ports, page_size=page_size, read_budget=read_budget)
                outcomes.append(outcome)
                state = outcome.state
        return outcomes


def totals(outcomes: list[PageOutcome]) -> dict[str, int]:
    out: dict[str, int] = {}
    for outcome in outcomes:
        for name, value in outcome.counts.items():
            out[name] = out.get(name, 0) + value
    return out


def entry(event_id: str, status: Status, at: datetime) -> HistoryEntry:
    return HistoryEntry(event_id=event_id, status=status, at=at, provider="sendgrid", provider_event=status.value)


def message(
    message_id: str,
    *,
    age_days: int,
    candidate_id: str = "cand-7",
    content: bool = True,
    terms: FakeTerms | None = None,
) -> MessageState:
    first = NOW - timedelta(days=age_days)
    state = MessageState(
        tenant=TENANT,
        message_id=message_id,
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        provider="sendgrid",
        message_key=f"sg-{message_id}",
        status=Status.OPENED,
        first_at=first,
        last_at=first + timedelta(hours=3),
        history=[
            entry(f"{message_id}-sent", Status.SENT, first),
            entry(f"{message_id}-open", Status.OPENED, first + timedelta(hours=1)),
            # later than the open, lower in rank: the entry that decides the status is the open
            entry(f"{message_id}-delay", Status.DELAYED, first + timedelta(hours=3)),
        ],
        candidate_id=candidate_id,
        requisition_id="req-42",
        thread_id=f"<{message_id}@mail.example.com>",
        recipients=(Party("zoe@example.com"),),
        sealed_subject="sealed:Entretien Zürich" if content else None,
        sealed_body="sealed:lundi matin" if content else None,
        content_hash="ab" * 32 if content else None,
    )
    if terms is not None and content:
        terms.add(state, "Entretien Zürich\nlundi matin")
    return state


def tier_of(world: World, message_id: str) -> str | None:
    found = world.messages.get(TENANT, message_id)
    assert found is not None
    return found.tier


def later(days: int) -> None:
    clock.freeze(NOW + timedelta(days=days))


# --- transitions ----------------------------------------------------------------------------------------------------


def test_a_message_older_than_warm_after_days_is_archived_whole_and_its_item_becomes_a_stub() -> None:
    world = World()
    old = world.messages.add(message("m-old", age_days=100, terms=world.terms))
    young = world.messages.add(message("m-young", age_days=10))

    counts = totals(world.run())

    assert counts == {"warm": 1}
    key = archive_key_for(old)
    assert key == "messages/acme/2026/08/m-old.json"
    archived, storage_class = world.archive.objects[key][-1]
    assert storage_class == "STANDARD_IA"
    # the whole item, content as sealed (never opened) and the full history
    assert archived.sealed_subject == "sealed:Entretien Zürich" and len(archived.history) == 3
    stub = world.messages.get(TENANT, "m-old")
    assert stub is not None
    assert (stub.tier, stub.archive_key) == ("warm", key)
    assert stub.sealed_subject is None and stub.sealed_body is None
    assert stub.history == old.history  # metadata: reports and deduplication read it
    # every fact a metadata search uses is unchanged, and so are the search terms
    assert (stub.candidate_id, stub.requisition_id, stub.thread_id, stub.status) == (
        "cand-7",
        "req-42",
        "<m-old@mail.example.com>",
        Status.OPENED,
    )
    assert at_of(stub) == at_of(old)
    assert len([t for t in world.terms.items if t[3] == "m-old"]) == 4
    assert world.messages.get(TENANT, "m-young") == young
    assert world.audit.entries[-1].actor == f"system:{JOB}"
    assert world.audit.entries[-1].action == "messages.tiering.warm"


def test_a_warm_message_moves_cold_by_a_copy_and_a_hot_one_past_cold_goes_straight_there() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100))
    world.run()
    world.messages.add(message("m-2", age_days=400))
    later(300)  # m-1 is 400 days old, m-2 700

    counts = totals(world.run())

    assert counts == {"cold": 2}
    for message_id in ("m-1", "m-2"):
        stub = world.messages.get(TENANT, message_id)
        assert stub is not None and stub.tier == "cold"
        assert stub.archive_key is not None
        assert world.archive.storage_class(stub.archive_key) == "GLACIER_IR"
        assert world.archive.read(stub.archive_key) is not None
    assert ("copy", "messages/acme/2026/08/m-1.json") in world.archive.calls  # warm -> cold: a copy, not a rewrite
    assert ("put", "messages/acme/2025/10/m-2.json") in world.archive.calls


def test_at_the_end_a_message_is_deleted_with_its_archive_and_search_terms_and_the_deletion_is_audited() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100, terms=world.terms))
    world.run()
    later(300)
    world.run()
    assert tier_of(world, "m-1") == "cold"
    later(700)  # 800 days old

    counts = totals(world.run())

    assert counts == {"deleted": 1}
    assert world.messages.items == {}
    assert world.archive.objects == {}
    assert world.terms.items == set()  # found from the archived content, opened only now
    deletion = next(e for e in world.audit.entries if e.action == "messages:delete")
    assert deletion.resource == "message/m-1:deleted" and deletion.actor == "system:messages-tiering"
    assert "delete_after_days=730" in (deletion.reason or "")


def test_a_held_message_is_not_deleted_but_counted_and_kept_cold_until_the_hold_is_released() -> None:
    world = World()
    world.messages.add(message("m-held", age_days=800, candidate_id="cand-held", terms=world.terms))
    world.messages.add(message("m-free", age_days=800, candidate_id="cand-free", terms=world.terms))
    hold = world.holds.hold_candidate("cand-held")

    counts = totals(world.run())

    assert counts == {"deleted": 1, "held_skipped": 1, "cold": 1}
    held = world.messages.get(TENANT, "m-held")
    assert held is not None and held.tier == "cold"  # kept, in the cheapest tier
    assert held.archive_key is not None and world.archive.read(held.archive_key) is not None
    assert world.archive.read(held.archive_key).sealed_body == "sealed:lundi matin"  # type: ignore[union-attr]
    assert {t[3] for t in world.terms.items} == {"m-held"}
    assert not [e for e in world.audit.entries if e.resource == "message/m-held:deleted"]

    assert totals(world.run()) == {"held_skipped": 1}  # every day again, nothing more

    world.holds.holds = [replace(hold, released_at=NOW, released_by="user:officer-1", release_reason="settled")]
    assert totals(world.run()) == {"deleted": 1}
    assert world.messages.items == {} and world.archive.objects == {} and world.terms.items == set()


def test_a_hold_placed_during_the_page_stops_the_deletion() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=800))
    read_once = world.holds.active
    calls = {"n": 0}

    def active(tenant: str) -> list[MessageHold]:
        calls["n"] += 1
        if calls["n"] == 2:  # the check right before the deletion sees the new hold
            world.holds.hold_candidate("cand-7")
        return read_once(tenant)

    world.holds.active = active  # type: ignore[method-assign]

    assert totals(world.run()) == {"held_skipped": 1, "cold": 1}
    assert world.messages.get(TENANT, "m-1") is not None


def test_running_the_day_again_changes_nothing() -> None:
    world = World()
    for age, name in ((100, "warm"), (400, "cold"), (800, "gone"), (5, "hot")):
        world.messages.add(message(f"m-{name}", age_days=age))
    first = totals(world.run())
    snapshot = (dict(world.messages.items), dict(world.archive.objects), len(world.archive.calls))

    again = totals(world.run())

    assert first == {"warm": 1, "cold": 1, "deleted": 1}
    assert again == {}
    assert (dict(world.messages.items), dict(world.archive.objects), len(world.archive.calls)) == snapshot


def test_a_page_handles_at_most_page_size_messages_and_reads_a_bounded_number_of_filtered_items() -> None:
    world = World()
    for n in range(25):
        world.messages.add(message(f"m-{n:03d}", age_days=100 + n))
    outcomes = world.run(page_size=10)
    assert [o.counts.get("warm", 0) for o in outcomes if o.counts] == [10, 10, 5]
    assert max(world.messages.due_calls) <= 10

    # Already warm, all 25 are filtered out of the warm phase: a page stops reading at its budget.
    world.messages.add(message("m-new", age_days=91))
    state = start_tiering(policies=world.policies, execution="exec-2")[0]
    state = state.model_copy(update={"phase": Phase.WARM})
    world.messages.due_calls.clear()
    outcome = tiering_page(state, ports=world.ports, page_size=5, read_budget=12)
    assert outcome.counts == {} and outcome.state.cursor is not None and not outcome.state.done
    assert sum(world.messages.due_calls) == 15  # three reads of 5: the budget of 12 was passed on the third
    while not outcome.state.done:
        outcome = tiering_page(outcome.state, ports=world.ports, page_size=5, read_budget=12)
    assert tier_of(world, "m-new") == "warm"


def test_a_concurrent_write_leaves_the_message_hot_and_no_orphan_object() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100))
    world.messages.stale_next.add("m-1")

    assert totals(world.run()) == {"stale": 1}
    current = world.messages.get(TENANT, "m-1")
    assert current is not None and current.tier is None and current.sealed_body == "sealed:lundi matin"
    assert world.archive.objects == {}

    assert totals(world.run()) == {"warm": 1}  # judged again the next time


def test_a_policy_that_breaks_the_rule_is_skipped_not_applied() -> None:
    world = World(MessagePolicy(tenant=TENANT, warm_after_days=400, cold_after_days=365, version=1))
    world.messages.add(message("m-1", age_days=800))
    assert totals(world.run()) == {}
    assert world.messages.get(TENANT, "m-1") is not None


def test_the_state_between_pages_is_plain_json() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100))
    state = start_tiering(policies=world.policies, execution="exec-1")[0]
    outcome = tiering_page(state, ports=world.ports)
    assert TieringState.model_validate_json(outcome.state.model_dump_json()) == outcome.state


# --- stubs, late events, reading back whole --------------------------------------------------------------------------


def test_a_late_event_lands_on_the_stub_and_is_part_of_the_message_read_back() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100))
    world.run()
    stub = world.messages.get(TENANT, "m-1")
    assert stub is not None
    late = ProviderEvent(
        provider=Provider.SENDGRID,
        event_id="m-1-click",
        message_key="sg-m-1",
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        status=Status.CLICKED,
        occurred_at=NOW,
        provider_event="click",
    )
    replayed = replace(late, event_id="m-1-open", status=Status.OPENED)
    applied = apply(TENANT, "m-1", stub, [late, replayed])  # what the ingest consumer does with a stub
    assert applied.state.status is Status.CLICKED and applied.state.tier == "warm"
    assert [e.event_id for e in applied.new_events] == ["m-1-click"]  # the replay is still a duplicate
    world.messages.save(applied.state)
    later(300)

    assert totals(world.run()) == {"cold": 1}

    whole = ArchivedMessages(world.messages, world.archive).get(TENANT, "m-1")
    assert whole is not None and whole.tier == "cold" and whole.sealed_body == "sealed:lundi matin"
    assert [e.event_id for e in whole.history] == ["m-1-sent", "m-1-open", "m-1-delay", "m-1-click"]
    assert current_status(whole.history) is Status.CLICKED


def test_content_that_arrives_on_a_stub_is_folded_into_the_archive_when_it_moves_cold() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100))
    world.run()
    stub = world.messages.get(TENANT, "m-1")
    assert stub is not None
    world.messages.save(replace(stub, sealed_subject="sealed:Re: Entretien", sealed_body="sealed:oui"))
    later(300)

    assert totals(world.run()) == {"cold": 1}

    stub = world.messages.get(TENANT, "m-1")
    assert stub is not None and stub.tier == "cold" and stub.sealed_subject is None
    archived = world.archive.read(stub.archive_key or "")
    assert archived is not None and archived.sealed_subject == "sealed:Re: Entretien"
    assert world.archive.storage_class(stub.archive_key or "") == "GLACIER_IR"


def test_a_message_without_content_changes_tier_without_an_archive_object() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100, content=False))
    assert totals(world.run()) == {"warm": 1}
    assert world.archive.objects == {}
    stub = world.messages.get(TENANT, "m-1")
    assert stub is not None and (stub.tier, stub.archive_key) == ("warm", None)
    assert ArchivedMessages(world.messages, world.archive).get(TENANT, "m-1") == stub

    later(300)
    assert totals(world.run()) == {"cold": 1}
    assert tier_of(world, "m-1") == "cold"
    later(700)
    assert totals(world.run()) == {"deleted": 1}
    assert world.messages.items == {} and world.archive.objects == {}


def test_an_archived_message_reads_back_whole() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100))
    world.run()
    store = ArchivedMessages(world.messages, world.archive)

    whole = store.get(TENANT, "m-1")

    assert whole is not None and whole.tier == "warm"
    assert whole.sealed_subject == "sealed:Entretien Zürich"
    assert [e.event_id for e in whole.history] == ["m-1-sent", "m-1-open", "m-1-delay"]
    assert store.get(TENANT, "nope") is None


def test_merged_shows_no_archived_content_once_the_stub_is_redacted() -> None:
    state = message("m-1", age_days=100)
    stub = replace(stub_of(state, Tier.WARM, "k"), redacted_at=NOW)
    assert merged(stub, state).sealed_subject is None


def test_a_redaction_through_the_archive_removes_the_archived_content_and_the_terms() -> None:
    world = World()
    world.messages.add(message("m-1", age_days=100, terms=world.terms))
    world.run()
    store = ArchivedMessages(world.messages, world.archive)
    whole = store.get(TENANT, "m-1")
    assert whole is not None

    removal = remove_content(
        whole, store=store, tools=ContentTools(opener=FakeOpener(), index=FakeIndex(), terms=world.terms)
    )

    assert removal.content_removed and removal.terms_removed == 4
    assert world.terms.items == set()
    archived = world.archive.read(whole.archive_key or "")
    assert archived is not None and archived.sealed_subject is None and archived.sealed_body is None
    assert len(archived.history) == 3 and archived.content_hash == "ab" * 32
    stub = world.messages.get(TENANT, "m-1")
    assert stub is not None and stub.tier == "warm" and stub.redacted_at is not None
    assert term_ats(whole)  # the terms were looked up at every time the full history names


# --- the policy's periods ---------------------------------------------------------------------------------------------


def test_the_policy_keeps_its_periods_and_changes_only_those_given() -> None:
    policies = FakePolicies()
    audit = FakeAuditLog()
    first = change_policy(OFFICER, ContentMode.FULL, 0, store=policies, audit=audit, request_id="r-1")
    assert (first.warm_after_days, first.cold_after_days, first.delete_after_days) == (90, 365, 730)

    second = change_policy(
        OFFICER,
        ContentMode.FULL,
        1,
        store=policies,
        audit=audit,
        request_id="r-2",
        tiers=TierDays(cold_after_days=180),
    )

    assert (second.warm_after_days, second.cold_after_days, second.delete_after_days, second.version) == (
        90,
        180,
        730,
        2,
    )
    same = change_policy(OFFICER, ContentMode.FULL, 2, store=policies, audit=audit, request_id="r-3")
    assert same.version == 2  # nothing changed, nothing written


@pytest.mark.parametrize(
    ("warm", "cold", "delete"),
    [(0, 365, 730), (90, 90, 730), (400, 365, 730), (90, 365, 365), (90, 365, 3651)],
)
def test_periods_out_of_order_or_range_are_a_bad_request_naming_the_rule(warm: int, cold: int, delete: int) -> None:
    with pytest.raises(BadRequest) as refused:
        change_policy(
            OFFICER,
            ContentMode.METADATA,
            0,
            store=FakePolicies(),
            audit=FakeAuditLog(),
            request_id="r-1",
            tiers=TierDays(warm, cold, delete),
        )
    assert "1 <= warm_after_days < cold_after_days < delete_after_days <= 3650" in str(refused.value)


def test_a_stale_version_is_still_a_conflict() -> None:
    policies = FakePolicies(MessagePolicy(tenant=TENANT, version=3))
    with pytest.raises(Conflict):
        change_policy(
            OFFICER,
            ContentMode.FULL,
            2,
            store=policies,
            audit=FakeAuditLog(),
            request_id="r-1",
            tiers=TierDays(30, 60, 90),
        )
