"""Audit chain throughput (issue 13, "Performance"), on the local runtime, into `.local/bench/results.json`:

- `audit.chain.appends_per_second_one_tenant`: entries of ONE tenant linked into its chains per second, with the
  entries spread over the inbox shards as the request path spreads them (`audit.chain.shards` chains, 8 today:
  `shared.audit.INBOX_SHARDS`);
- `audit.chain.appends_per_second_one_head`: the same with every entry on ONE chain, the one-HEAD design of
  before the sharding;
- `audit.chain.sharded_vs_one_head`: the first over the second; target at least 1.0.

Method. The runtime is started once, as `make run` starts it (a synth into a temporary `cdk.out`, or the one
`--cdk-out` names, then `python -m infra.local --port 0`, as tests/e2e/conftest.py does) and stopped with Ctrl-C
at the end, whatever happened. A run takes a fresh tenant and N entries (default 1,500), each one request's
audit item, and writes them from several threads exactly as the request path does (`DynamoAuditLog.write`: the
inbox item of `shared.audit.inbox_item` and its conditional PutItem) against the emulator. The clock starts
before the first write. Every `--poll` seconds the first chain not yet complete is read: does it hold its last
entry (a GetItem of `SEQ#<entries written to it>`; seqs are consecutive), and if not, its head by bisection on
such GetItems; a complete chain is not read again and the next one is read at once, so both designs cost the
emulator, which serves the linker too, the same few GetItems a poll. The clock stops when every chain holds its
last entry: appends/second = N / that time, what one tenant's burst sees, inserts and linking overlapping (the
linker starts while the writers still write), within one poll interval.

Which chain an entry goes to is not chosen by the benchmark: the linker chains an inbox item onto the chain of
its inbox shard (functions/audit/logic/linker.py), and the request path derives that shard from the entry's
fingerprint (`shared.audit.inbox_item`). So the sharded run keeps the entries whose inbox shard is any shard
(all of them: about N/8 per chain), and the one-HEAD run keeps only those whose shard is 0 (drawing entries
until N land there): every item is still written unchanged by the request path's own code. Before each run the
streams are drained (the pollers' batch count stays still for a second), and a warm-up links a few entries
before the first run, so the linker's cold start is counted in neither design. With `--rounds 2` the runs go
one-HEAD, sharded, sharded, one-HEAD (drift as the table grows cancels) and the medians are recorded.

What the figures can and cannot show. In AWS, sharding is what lets one tenant's rate grow: each chain is one
partition key (`T#<tenant>#AUDIT#<shard>`), a partition takes about 1,000 write units a second and a link is a
transaction of three actions, so one HEAD caps a tenant at a few hundred appends a second whatever the linker
does, and eight chains lift that cap eightfold; the linker also links the chains of a batch side by side (up to
8 at once, functions/audit/logic/linker.py), so DynamoDB's round trips overlap where one chain's links must follow
each other. The local runtime can show neither: no partition has a limit, and every write of every chain is
served by one emulator process (one interpreter; `transactions_snapshot_items` runs transactions one at a time),
which is what bounds linking here (about 5 ms of its time a link, measured in process). Measured: the sharded run
at 0.93-1.03 of the one-HEAD run (four runs on 2 CPUs). So the figure is a guard, not a gain: the sharded
design's extra work (its threads, and a head read per chain, once per warm linker) must cost one tenant at most
a fifth of its local rate (`audit.chain.sharded_vs_one_head >= 0.8`); appends/second have no target (the issue
sets none) and are recorded beside each other, with the shard count. Each run prints its linker batches and the
cost of one head read after it.

Run: `python -m benchmarks.audit_chain [--appends 1500] [--rounds 2] [--cdk-out cdk.out] [--no-record]`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.results import Figure, record
from shared.audit import INBOX_SHARDS, AuditEntry, Outcome, inbox_item

ROOT = Path(__file__).resolve().parents[1]
APPENDS = 1_500
WRITERS = 4
ROUNDS = 2  # ABBA: the drift as the table grows cancels, and each design is the median of two
POLL_SECONDS = 0.25
RUN_TIMEOUT_SECONDS = 300.0
STALL_SECONDS = 60.0  # no entry linked for this long: the linker is stuck, fail rather than wait out the timeout
IDLE_SECONDS = 1.0  # the stream is drained when the poller delivered no batch for this long
WARM_UP_APPENDS = 16
TARGET_RATIO = 0.8  # a guard: locally the emulator serialises every chain's writes (see above)
SHARDED = "sharded"
ONE_HEAD = "one_head"
DESIGN_SHARDS: dict[str, tuple[int, ...]] = {SHARDED: tuple(range(INBOX_SHARDS)), ONE_HEAD: (0,)}
_ACTORS = 200  # a tenant's users: each reads a few dozen records at most, far below the anomaly thresholds
_ACTIONS = ("candidates:read", "applications:read", "applications:update", "messages:read", "vacancies:publish")


# --- pure helpers ----------------------------------------------------------------------------------------------


def inbox_shard(entry: AuditEntry) -> int:
    """The inbox shard, hence the chain, that the request path puts `entry` on when a request audits it alone."""
    pk = inbox_item(entry.tenant, [entry], entry.at)["pk"]["S"]
    return int(pk.rsplit("#", 1)[1])


def entries_for(tenant: str, count: int, shards: Iterable[int], seed: int = 13) -> list[AuditEntry]:
    """`count` realistic entries of `tenant` (one request's each), drawn until `count` of them land on `shards`."""
    wanted = frozenset(shards)
    if not wanted or not wanted <= set(range(INBOX_SHARDS)):
        raise ValueError(f"shards must be a non-empty subset of 0..{INBOX_SHARDS - 1}")
    rng = random.Random(seed)
    actors = [f"user:{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(_ACTORS)]
    out: list[AuditEntry] = []
    while len(out) < count:
        entry = AuditEntry(
            tenant=tenant,
            actor=rng.choice(actors),
            action=rng.choice(_ACTIONS),
            resource=f"candidates/{uuid.UUID(int=rng.getrandbits(128))}",
            outcome=Outcome.ALLOWED,
            request_id=str(uuid.UUID(int=rng.getrandbits(128))),
            source_ip=f"203.0.113.{rng.randrange(1, 255)}",
        )
        if inbox_shard(entry) in wanted:
            out.append(entry)
    return out


def per_shard(entries: Iterable[AuditEntry]) -> dict[int, int]:
    """How many of `entries` each chain receives."""
    return dict(sorted(Counter(inbox_shard(e) for e in entries).items()))


def split(items: Sequence[AuditEntry], parts: int) -> list[list[AuditEntry]]:
    """`items` dealt round-robin into `parts` lists (one per writer thread), none empty unless `items` is short."""
    if parts < 1:
        raise ValueError("at least one part")
    return [list(items[start::parts]) for start in range(min(parts, len(items)))]


def plan(rounds: int) -> list[str]:
    """The designs in run order: one-HEAD then sharded, the next round the other way round (ABBA)."""
    if rounds < 1:
        raise ValueError("at least one round")
    order: list[str] = []
    for number in range(rounds):
        order += [ONE_HEAD, SHARDED] if number % 2 == 0 else [SHARDED, ONE_HEAD]
    return order


def progress(heads: dict[int, int], expected: dict[int, int]) -> tuple[int, bool]:
    """(entries linked so far, whether every chain is complete). Raises when a chain holds more than written."""
    over = {s: seq for s, seq in heads.items() if seq > expected.get(s, 0)}
    if over:
        raise RuntimeError(f"chains hold more entries than were written: {over} (expected {expected})")
    return sum(heads.values()), all(heads.get(s, 0) == n for s, n in expected.items())


@dataclass(frozen=True)
class Run:
    design: str
    chains: int
    appends: int
    write_seconds: float  # first write to last write acknowledged
    link_seconds: float  # first write to the poll that found everything linked
    linker_invocations: int = 0  # batches the linker took during the run (the emulator's own count)
    head_read_seconds: float = 0.0  # one head read on the emulator just after the run

    @property
    def extra_head_reads_seconds(self) -> float:
        """At most how long this run's linker spent reading heads beyond the one a batch of a single chain reads."""
        return (self.chains - 1) * self.linker_invocations * self.head_read_seconds

    @property
    def appends_per_second(self) -> float:
        return appends_per_second(self.appends, self.link_seconds)


def appends_per_second(appends: int, seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("a run takes some time")
    return appends / seconds


def figures(runs: Sequence[Run]) -> list[Figure]:
    """The recorded figures: the median rate of each design, their ratio (target TARGET_RATIO) and the shards."""
    by_design = {d: [r for r in runs if r.design == d] for d in (SHARDED, ONE_HEAD)}
    if not all(by_design.values()):
        raise ValueError("figures need at least one run of each design")
    sharded = statistics.median(r.appends_per_second for r in by_design[SHARDED])
    one_head = statistics.median(r.appends_per_second for r in by_design[ONE_HEAD])
    return [
        Figure("audit.chain.appends_per_second_one_tenant", round(sharded, 1), "appends/s", None, "higher"),
        Figure("audit.chain.appends_per_second_one_head", round(one_head, 1), "appends/s", None, "higher"),
        Figure("audit.chain.sharded_vs_one_head", round(sharded / one_head, 3), "ratio", TARGET_RATIO, "higher"),
        Figure("audit.chain.shards", max(r.chains for r in by_design[SHARDED]), "shards"),
    ]


# --- on the local runtime ----------------------------------------------------------------------------------------


class Bench:
    """The runtime's audit table and status, as a benchmark run needs them."""

    def __init__(self, api: Any, writers: int, poll: float) -> None:
        import boto3
        from botocore.config import Config

        from functions.audit.dal.chain import DynamoChainStore
        from shared.audit import DynamoAuditLog

        self.api = api
        self.writers = writers
        self.poll = poll
        session = api.session
        make_client: Any = boto3.client
        self.client = make_client(
            "dynamodb",
            endpoint_url=session["emulator_endpoint"],
            region_name=session["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(max_pool_connections=writers + 2, retries={"mode": "standard"}),
        )
        table = api.resource("AuditAuditTable")
        self.table = table
        self.log = DynamoAuditLog(table, client=self.client)  # the request path's adapter
        self.chains = DynamoChainStore(table, client=self.client)  # the linker's own head reader

    def stream_batches(self) -> int:
        status, body = self.api.call("GET", "/_local/status")
        if status != 200:
            raise RuntimeError(f"/_local/status answered {status}: {body}")
        return int(body["stream_batches_delivered"])

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until the stream pollers have delivered no batch for IDLE_SECONDS."""
        deadline = time.monotonic() + timeout
        last, still_since = self.stream_batches(), time.monotonic()
        while time.monotonic() - still_since < IDLE_SECONDS:
            if time.monotonic() > deadline:  # another table's stream kept busy: measure anyway, and say so
                print(f"warning: the streams did not go quiet in {timeout:.0f} s", file=sys.stderr)
                return
            time.sleep(self.poll)
            now = self.stream_batches()
            if now != last:
                last, still_since = now, time.monotonic()

    def linker_invocations(self) -> int:
        status, body = self.api.call("GET", "/_local/status")
        if status != 200:
            raise RuntimeError(f"/_local/status answered {status}: {body}")
        return sum(int(v["invocations"]) for k, v in body["functions"].items() if "Linker" in k)

    def has_seq(self, tenant: str, shard: int, seq: int) -> bool:
        """Whether the chain holds entry `seq` (so all before it: seqs are consecutive): one GetItem."""
        from functions.audit.dal.chain import chain_pk
        from shared.keys import sequence_key

        key = {"pk": {"S": chain_pk(tenant, shard)}, "sk": {"S": sequence_key("SEQ", seq)}}
        found = self.client.get_item(TableName=self.table, Key=key, ProjectionExpression="pk", ConsistentRead=True)
        return "Item" in found

    def head_seq(self, tenant: str, shard: int, low: int, high: int) -> int:
        """The chain's head seq, known to be in [low, high], by bisection on `has_seq`."""
        while low < high:
            middle = (low + high + 1) // 2
            if self.has_seq(tenant, shard, middle):
                low = middle
            else:
                high = middle - 1
        return low

    def head_read_seconds(self, tenant: str, shard: int, reads: int = 3) -> float:
        started = time.perf_counter()
        for _ in range(reads):
            self.chains.head(tenant, shard)
        return (time.perf_counter() - started) / reads

    def _write(self, entries: list[AuditEntry], stop: threading.Event) -> float:
        for entry in entries:
            if stop.is_set():
                break
            self.log.write(entry.tenant, [entry])
        return time.perf_counter()

    def run(self, design: str, entries: list[AuditEntry], timeout: float = RUN_TIMEOUT_SECONDS) -> Run:
        """Write `entries` (one tenant's) from the writer threads and time until the linker linked them all.

        Each poll reads the first chain not yet complete, in both designs alike (the emulator serves the linker
        too): whether it holds its last entry, and if not, its head by bisection; a complete chain is not read
        again, and the next one is read at once. GetItems only, which cost moto nothing as the table grows."""
        tenant = entries[0].tenant
        expected = per_shard(entries)
        heads = dict.fromkeys(expected, 0)
        pending = list(expected)
        invocations = self.linker_invocations()
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="audit-writer")
        started = time.perf_counter()
        futures: list[Future[float]] = [pool.submit(self._write, part, stop) for part in split(entries, self.writers)]
        try:
            last_linked, last_change = -1, started
            while True:
                for future in futures:
                    if future.done():
                        future.result()  # a failed write fails the run
                while pending:
                    shard = pending[0]
                    if self.has_seq(tenant, shard, expected[shard]):
                        heads[shard] = expected[shard]
                        pending.pop(0)
                        continue
                    heads[shard] = self.head_seq(tenant, shard, heads[shard], expected[shard] - 1)
                    break
                linked, complete = progress(heads, expected)
                now = time.perf_counter()
                if complete:
                    written = max(f.result() for f in futures)  # done: every entry written was linked
                    return Run(
                        design,
                        len(expected),
                        len(entries),
                        written - started,
                        now - started,
                        self.linker_invocations() - invocations,
                        self.head_read_seconds(tenant, next(iter(expected))),
                    )
                if linked != last_linked:
                    last_linked, last_change = linked, now
                if now - started > timeout or now - last_change > STALL_SECONDS:
                    raise RuntimeError(
                        f"{design}: {linked} of {len(entries)} entries linked after {now - started:.0f} s "
                        f"(heads {heads}, expected {expected})"
                    )
                time.sleep(self.poll)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)


def _synth(out: Path) -> None:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(out),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    done = subprocess.run([sys.executable, "-m", "infra.app"], cwd=ROOT, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the synth failed ({done.returncode}):\n{done.stderr.decode(errors='replace')[-3000:]}")


def measure(
    appends: int, rounds: int, writers: int, poll: float, cdk_out: Path | None, timeout: float = RUN_TIMEOUT_SECONDS
) -> list[Run]:
    sys.path.insert(0, str(ROOT))
    from tests.e2e.conftest import Api, start_runtime, stop_runtime

    # Drawn before the runtime starts: not timed, and the one-HEAD draw (about 8 tries an entry) costs no run.
    batches = [
        (design, entries_for(f"bench-chain-{uuid.uuid4().hex[:10]}", appends, DESIGN_SHARDS[design], seed=n))
        for n, design in enumerate(plan(rounds))
    ]
    warm_up = entries_for(f"bench-chain-{uuid.uuid4().hex[:10]}", WARM_UP_APPENDS, DESIGN_SHARDS[SHARDED], seed=99)
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        if cdk_out is None:
            cdk_out = Path(tmp) / "cdk.out"
            started = time.perf_counter()
            _synth(cdk_out)
            print(f"synth: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        process, session, log = start_runtime(cdk_out, Path(tmp))
        try:
            bench = Bench(Api(session, log), writers, poll)
            bench.drain()
            bench.run("warm-up", warm_up)
            runs = []
            for design, entries in batches:
                bench.drain()
                run = bench.run(design, entries, timeout)
                print(
                    f"{design:>8}: {run.appends} appends on {run.chains} chain(s): "
                    f"written in {run.write_seconds:.2f} s "
                    f"({run.appends / run.write_seconds:,.0f}/s), linked in {run.link_seconds:.2f} s "
                    f"({run.appends_per_second:,.1f} appends/s); {run.linker_invocations} linker batches, "
                    f"a head read {run.head_read_seconds * 1000:.1f} ms after the run"
                    + (f", up to {run.extra_head_reads_seconds:.2f} s on extra head reads" if run.chains > 1 else ""),
                    flush=True,
                )
                runs.append(run)
            return runs
        except Exception:
            print(f"runtime log (tail):\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
        finally:
            stop_runtime(process)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit_chain", description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=APPENDS, help="entries per run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs of each design (ABBA order)")
    parser.add_argument("--writers", type=int, default=WRITERS, help="writer threads")
    parser.add_argument("--poll", type=float, default=POLL_SECONDS, help="seconds between head polls")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT_SECONDS, help="seconds a run may take")
    parser.add_argument("--cdk-out", type=Path, default=None, help="a synthesised cdk.out to reuse (default: synth)")
    parser.add_argument("--no-record", action="store_true", help="print the figures, leave results.json alone")
    args = parser.parse_args(argv)
    if args.appends < INBOX_SHARDS:
        parser.error(f"--appends must be at least {INBOX_SHARDS}")
    runs = measure(args.appends, args.rounds, args.writers, args.poll, args.cdk_out, args.timeout)
    found = figures(runs)
    for figure in found:
        met = figure.met()
        verdict = "" if met is None else f" (target >= {figure.target}: {'met' if met else 'NOT met'})"
        print(f"{figure.name}: {figure.value} {figure.unit}{verdict}")
    print(f"{args.appends} appends a run, {args.rounds} round(s), {args.writers} writers, {os.cpu_count()} CPUs")
    if not args.no_record:
        print(f"figures written to {record(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
