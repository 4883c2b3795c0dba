"""The single writer's rules with the chain store in memory: an inbox item is linked after its chain's head, a
lost race re-reads the head, a redelivered item is not linked twice, and a change that is not an insert is
reported."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from functions.audit.dal.chain import AlreadyLinked, Head, HeadMoved
from functions.audit.handlers.linker import SAMPLE_EVENT, changes_of
from functions.audit.logic.linker import StreamChange, apply_changes, inbox_ref
from shared.audit import AuditEntry, Outcome, inbox_item
from shared.audit_proof import GENESIS, LinkedEntry, entry_hash
from tests.conftest import sample_event


class MemoryChain:
    def __init__(self) -> None:
        self.chains: dict[tuple[str, int], list[LinkedEntry]] = {}
        self.sources: set[str] = set()
        self.registered: list[str] = []
        self.races = 0  # links refused as if another linker had taken the seq first
        self.head_reads = 0

    def head(self, tenant: str, shard: int) -> Head:
        self.head_reads += 1
        chain = self.chains.get((tenant, shard), [])
        return Head(len(chain), chain[-1].hash if chain else GENESIS)

    def link(self, tenant: str, shard: int, source: str, linked: Sequence[LinkedEntry]) -> None:
        if source in self.sources:
            raise AlreadyLinked(source)
        if self.races:
            self.races -= 1
            self.chains.setdefault((tenant, shard), []).append(  # the other linker's entry
                LinkedEntry({"seq": len(self.chains.get((tenant, shard), [])) + 1}, GENESIS, b"\x01" * 32)
            )
            raise HeadMoved(tenant)
        chain = self.chains.setdefault((tenant, shard), [])
        if linked[0].entry["seq"] != len(chain) + 1 or linked[0].prev_hash != (chain[-1].hash if chain else GENESIS):
            raise HeadMoved(tenant)  # the store checks the head a link follows
        chain.extend(linked)
        self.sources.add(source)

    def register(self, tenant: str) -> None:
        self.registered.append(tenant)


def inserted(*resources: str, tenant: str = "acme") -> StreamChange:
    entries = [
        AuditEntry(
            tenant=tenant, actor="user:u1", action="messages:read", resource=r, outcome=Outcome.ALLOWED, request_id="q"
        )
        for r in resources
    ]
    item = inbox_item(tenant, entries, entries[0].at)
    return StreamChange("INSERT", item["pk"]["S"], item["sk"]["S"], item)


def test_entries_are_linked_after_the_head_with_their_shard_and_seq() -> None:
    store, first, second = MemoryChain(), inserted("a", "b"), inserted("c")

    report = apply_changes([first, second], store)

    assert report.linked_entries == 3 and store.registered.count("acme") >= 1
    for (tenant, shard), chain in store.chains.items():
        prev = GENESIS
        for seq, linked in enumerate(chain, start=1):
            assert (linked.entry["tenant"], linked.entry["shard"], linked.entry["seq"]) == (tenant, shard, seq)
            assert linked.prev_hash == prev and linked.hash == entry_hash(prev, linked.entry)
            prev = linked.hash


def test_a_lost_race_rereads_the_head_and_links_after_it() -> None:
    store = MemoryChain()
    store.races = 2
    change = inserted("a")

    report = apply_changes([change], store)

    ref = inbox_ref(change.pk)
    assert ref is not None and report.linked_entries == 1
    assert store.chains[ref][-1].entry["seq"] == 3  # after the two the other linker took


def test_a_redelivered_item_is_not_linked_twice() -> None:
    store, change = MemoryChain(), inserted("a")
    apply_changes([change], store)

    report = apply_changes([change], store)

    assert (report.linked_entries, report.already_linked) == (0, 1)


def test_the_sample_stream_event_links_its_insert_and_reports_its_modify() -> None:
    store = MemoryChain()

    report = apply_changes(changes_of(sample_event(SAMPLE_EVENT)), store)

    assert report.linked_entries == 1
    assert [(event, pk.split("#")[2]) for event, pk, _ in report.changes_not_inserts] == [("MODIFY", "AUDITIN")]


@pytest.mark.parametrize("pk", ["T#acme#AUDIT#3", "AUDIT#TENANTS", "T#acme#AUDITIN#x", "T#acme#AUDIT#DIGEST"])
def test_the_linkers_own_inserts_are_not_inbox_items(pk: str) -> None:
    assert inbox_ref(pk) is None


class MeetingChain(MemoryChain):
    """Each chain's first link waits until every chain of the batch is linking: linked one after the other, the
    first would wait forever (the barrier breaks after a few seconds and the batch fails)."""

    def __init__(self, chains: int) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.meeting = threading.Barrier(chains, timeout=10)
        self.order: dict[tuple[str, int], list[str]] = {}

    def link(self, tenant: str, shard: int, source: str, linked: Sequence[LinkedEntry]) -> None:
        with self.lock:
            first = (tenant, shard) not in self.order
            self.order.setdefault((tenant, shard), []).append(source)
        if first:
            self.meeting.wait()
        with self.lock:
            super().link(tenant, shard, source, linked)


def test_the_chains_of_a_batch_are_linked_side_by_side_each_in_stream_order() -> None:
    # Given a batch of one tenant's items over three chains, several items each, interleaved in the stream
    changes: list[StreamChange] = []
    n = 0
    while {inbox_ref(c.pk) for c in changes} != {("acme", s) for s in (0, 1, 2)} or len(changes) < 12:
        change = inserted(f"r{n}")
        n += 1
        if inbox_ref(change.pk) in {("acme", s) for s in (0, 1, 2)}:
            changes.append(change)
    store = MeetingChain(chains=3)

    # When they are linked
    report = apply_changes(changes, store)

    # Then the three chains were linking at once (the barrier met), and each chain took its items in stream order
    assert report.linked_items == len(changes) and report.linked_entries == len(changes)
    for ref, sources in store.order.items():
        assert sources == [c.sk for c in changes if inbox_ref(c.pk) == ref]
        assert [e.entry["seq"] for e in store.chains[ref]] == list(range(1, len(sources) + 1))


def test_a_chain_that_fails_fails_the_batch_after_the_others_are_linked() -> None:
    # Given two chains, one of which keeps losing its head race
    changes: list[StreamChange] = []
    n = 0
    while len({inbox_ref(c.pk) for c in changes}) < 2:
        changes.append(inserted(f"x{n}"))
        n += 1
    changes = [c for c in changes if inbox_ref(c.pk) in {inbox_ref(changes[0].pk), inbox_ref(changes[-1].pk)}]
    store = MemoryChain()
    failing = inbox_ref(changes[0].pk)
    real_link = store.link

    def link(tenant: str, shard: int, source: str, linked: Sequence[LinkedEntry]) -> None:
        if (tenant, shard) == failing:
            raise HeadMoved(tenant)
        real_link(tenant, shard, source, linked)

    store.link = link  # type: ignore[method-assign]

    # When the batch is linked, it fails
    with pytest.raises(HeadMoved):
        apply_changes(changes, store)

    # And the other chain's items are linked (a retry finds them linked and skips them)
    other = [c for c in changes if inbox_ref(c.pk) != failing]
    assert store.sources == {c.sk for c in other}


def inserted_on(ref: tuple[str, int], name: str) -> StreamChange:
    """An inserted inbox item of `ref`'s tenant that lands on `ref`'s chain."""
    for n in range(1000):
        change = inserted(f"{name}-{n}", tenant=ref[0])
        if inbox_ref(change.pk) == ref:
            return change
    raise AssertionError("no resource name lands on the chain")


def test_heads_remembered_from_the_last_batch_are_not_read_again_and_a_wrong_one_is_corrected() -> None:
    store, ref = MemoryChain(), ("acme", 3)
    heads: dict[tuple[str, int], Head] = {}
    apply_changes([inserted_on(ref, "a")], store, heads=heads)
    assert store.head_reads == 1 and heads[ref].seq == 1

    # When the next batch comes to the same chain, its head is not read
    report = apply_changes([inserted_on(ref, "b")], store, heads=heads)
    assert report.linked_items == 1 and store.head_reads == 1 and heads[ref].seq == 2

    # And when the chain moved on without this linker (another environment linked an entry), the remembered head
    # is refused by the store, read, and the item linked after the chain's real head
    store.chains[ref].append(LinkedEntry({"seq": 3}, store.chains[ref][-1].hash, b"\x02" * 32))
    report = apply_changes([inserted_on(ref, "c")], store, heads=heads)
    assert report.linked_items == 1 and store.head_reads == 2
    assert [e.entry["seq"] for e in store.chains[ref]] == [1, 2, 3, 4]
    assert store.chains[ref][3].prev_hash == b"\x02" * 32 and heads[ref].seq == 4
