"""The pure parts of the audit chain benchmark (benchmarks/audit_chain.py): which chain each entry goes to, how the
writers share the work, the run order and the figures' arithmetic. The runtime itself is not started here."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.audit_chain import (
    DESIGN_SHARDS,
    ONE_HEAD,
    SHARDED,
    TARGET_RATIO,
    Run,
    appends_per_second,
    entries_for,
    figures,
    inbox_shard,
    per_shard,
    plan,
    progress,
    split,
)
from shared.audit import INBOX_SHARDS, inbox_item


def test_the_one_head_run_puts_every_entry_on_chain_zero_as_the_request_path_writes_it() -> None:
    # Given the one-HEAD run's entries
    entries = entries_for("bench-a", 50, DESIGN_SHARDS[ONE_HEAD])

    # Then the request path's own inbox item of each lands on shard 0
    assert len(entries) == 50
    assert {inbox_item(e.tenant, [e], e.at)["pk"]["S"] for e in entries} == {"T#bench-a#AUDITIN#0"}
    assert per_shard(entries) == {0: 50}


def test_the_sharded_run_spreads_one_tenant_over_every_shard() -> None:
    entries = entries_for("bench-b", 400, DESIGN_SHARDS[SHARDED])

    counts = per_shard(entries)
    assert set(counts) == set(range(INBOX_SHARDS))
    assert sum(counts.values()) == 400
    assert min(counts.values()) > 400 / INBOX_SHARDS / 2  # no chain starved, none hoarding
    assert {e.tenant for e in entries} == {"bench-b"}


def test_entries_are_reproducible_and_distinct() -> None:
    first, again = entries_for("bench-c", 20, [0, 1], seed=5), entries_for("bench-c", 20, [0, 1], seed=5)

    assert [e.request_id for e in first] == [e.request_id for e in again]
    assert len({e.request_id for e in first}) == 20  # one request each: no two items share a key
    assert {inbox_shard(e) for e in first} <= {0, 1}


@pytest.mark.parametrize("shards", [[], [INBOX_SHARDS]])
def test_entries_for_refuses_shards_that_do_not_exist(shards: list[int]) -> None:
    with pytest.raises(ValueError):
        entries_for("bench-d", 1, shards)


def test_split_deals_every_entry_to_exactly_one_writer() -> None:
    entries = entries_for("bench-e", 10, DESIGN_SHARDS[SHARDED])

    parts = split(entries, 4)

    assert [len(p) for p in parts] == [3, 3, 2, 2]
    assert sorted(e.request_id for p in parts for e in p) == sorted(e.request_id for e in entries)
    assert len(split(entries[:2], 4)) == 2  # no idle writer with nothing to do


def test_plan_alternates_the_designs_abba() -> None:
    assert plan(1) == [ONE_HEAD, SHARDED]
    assert plan(2) == [ONE_HEAD, SHARDED, SHARDED, ONE_HEAD]
    with pytest.raises(ValueError):
        plan(0)


def test_progress_sums_the_heads_and_is_complete_only_when_every_chain_is() -> None:
    expected = {0: 3, 5: 2}

    assert progress({0: 3, 5: 1}, expected) == (4, False)
    assert progress({0: 3, 5: 2}, expected) == (5, True)
    with pytest.raises(RuntimeError):
        progress({0: 4, 5: 2}, expected)  # more linked than written: a seq given twice


def test_figures_record_the_median_rates_and_their_ratio() -> None:
    # Given two rounds: the sharded runs at 200 and 300 appends/s, the one-HEAD runs at 100 and 200
    runs = [
        Run(ONE_HEAD, 1, 1000, 1.0, 10.0),
        Run(SHARDED, 8, 1000, 1.0, 5.0),
        Run(SHARDED, 8, 1200, 1.0, 4.0),
        Run(ONE_HEAD, 1, 1000, 1.0, 5.0),
    ]

    # When the figures are made
    found = {f.name: f for f in figures(runs)}

    # Then each design's median, the ratio against its target, and the shard count are recorded
    assert found["audit.chain.appends_per_second_one_tenant"].value == 250.0
    assert found["audit.chain.appends_per_second_one_head"].value == 150.0
    ratio = found["audit.chain.sharded_vs_one_head"]
    assert ratio.value == pytest.approx(250 / 150, abs=1e-3)
    assert (ratio.target, ratio.better, ratio.met()) == (TARGET_RATIO, "higher", True)
    assert found["audit.chain.shards"].value == 8


def test_a_sharded_design_more_than_a_fifth_slower_misses_the_target() -> None:
    def ratio_of(sharded_seconds: float) -> Any:
        runs = [Run(ONE_HEAD, 1, 100, 0.5, 1.0), Run(SHARDED, 8, 100, 0.5, sharded_seconds)]
        return {f.name: f for f in figures(runs)}["audit.chain.sharded_vs_one_head"]

    assert (ratio_of(1.25).value, ratio_of(1.25).met()) == (0.8, True)
    assert (ratio_of(1.3).value, ratio_of(1.3).met()) == (0.769, False)


def test_figures_need_both_designs_and_a_run_needs_time() -> None:
    with pytest.raises(ValueError):
        figures([Run(SHARDED, 8, 100, 0.5, 1.0)])
    with pytest.raises(ValueError):
        appends_per_second(100, 0.0)


def test_the_extra_head_reads_of_a_sharded_run_are_bounded_by_its_batches() -> None:
    # Given a sharded run whose linker took 20 batches, a head read costing 5 ms
    run = Run(SHARDED, 8, 1000, 1.0, 5.0, linker_invocations=20, head_read_seconds=0.005)

    # Then at most 7 extra head reads a batch: 0.7 s; a single chain reads none extra
    assert run.extra_head_reads_seconds == pytest.approx(0.7)
    assert Run(ONE_HEAD, 1, 1000, 1.0, 5.0, 20, 0.005).extra_head_reads_seconds == 0
