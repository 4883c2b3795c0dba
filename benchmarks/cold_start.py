"""Cold start of every handler module, as a ratio against a floor measured in the same run (`make bench`).

Cold initialisation, as the foundation issue defines it, in a fresh interpreter: importing the handler module,
then the first call's setup (the clients it creates, the settings it loads). The floor is a fresh interpreter
that imports Powertools' REST resolver, pydantic and boto3 and creates one DynamoDB client. Both are timed with
`time.perf_counter` inside the child, so interpreter start-up is left out of both. Measured apart and reported
beside it: the first request itself, `lambda_handler` invoked once with a sample event (see `_handlers.py`) while
a local stub endpoint answers every AWS call at once, so "init + request" is what a caller of a cold function
waits for, less the network.

The machine is shared and noisy: every target runs `--repeat` times, round-robin with the floor (the order
rotates each round), after one uncounted warm-up round that fills the OS file cache and the `.pyc` files. The
ratio is paired: in each round the handler's time over the floor's time in that same round (seconds apart, so
a change in the machine's load hits both), and the verdict is on the median of those per-round ratios. The
ratio of the two medians is printed beside it. The benchmark reports; it does not fail on a handler over
target (exit status 1 only when something could not be measured at all).

A second reference is measured alongside, for reading the figures, not for the verdict: the floor plus the
resolver constructed with `enable_validation=True`, as every API handler builds it (Powertools' OpenAPI
validation, which builds a pydantic model at import). The column "vs +validation" is the ratio against it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import _importtime
from benchmarks._cold_child import RESULT_MARKER
from benchmarks._handlers import HandlerModule, discover
from benchmarks._stub_endpoint import StubEndpoint
from benchmarks.results import Figure, record

TARGET_RATIO = 1.15
ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("_cold_child.py")
OUT_DIR = ROOT / ".local" / "bench"
FLOOR = "floor"
VALIDATING_FLOOR = "floor-validating"
METHOD = (
    "cold init = import of the handler module + its first call's setup (clients, settings); init + request adds "
    "the first invocation with a sample event, AWS answered by a local stub endpoint (no network)"
)
# Passed through from the caller's environment; everything else the child sees is set here.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


@dataclass
class Target:
    name: str
    argv: list[str]
    event_source: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def median(self, key: str = "total_ms") -> float:
        return statistics.median(r[key] for r in self.runs)

    def minimum(self) -> float:
        return min(r["total_ms"] for r in self.runs)

    @property
    def modules(self) -> set[str]:
        return set(self.runs[-1]["modules"]) if self.runs else set()


def child_environment(endpoint: str) -> dict[str, str]:
    """What a function gets in Lambda, with fake credentials and every AWS endpoint pointed at the stub."""
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "POWERTOOLS_SERVICE_NAME": "cold-start-bench",
            "POWERTOOLS_METRICS_NAMESPACE": "ColdStartBench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as infra/constructs/foundation.py sets it for every function
            "STAGE": "bench",
            "SERVICE_VERSION": "0.0.0-bench",
            "AUDIT_TABLE_NAME": "bench-audit",
            "PLATFORM_TABLE_NAME": "bench-platform",
            "HEALTH_STALE_AFTER_SECONDS": "900",
            "EVENT_BUS_NAME": "bench-bus",
            "RETENTION_TABLE_NAME": "bench-retention",
            "RETENTION_KEYS_TABLE_NAME": "bench-retention-keys",
            "DATA_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000",
            "AUDIT_SIGNING_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000001",
            "IDENTITY_PROVIDERS": "{}",  # no federated identity provider: the template's default
            "USER_POOL_ID": "eu-west-1_BenchPool1",
            "AUDIT_EXPORT_WORKER_NAME": "bench-audit-export-worker",
            "ARCHIVE_BUCKET_NAME": "bench-archive",
            "EXPORT_BUCKET_NAME": "bench-exports",
            "TENANT_SECRET_PREFIX": "bench/tenants/",
            "WEBHOOK_QUEUE_URL": f"{endpoint}/123456789012/bench-webhooks",
            "WEBHOOK_PROVIDER": "bench",
            "MESSAGES_TABLE_NAME": "bench-messages",
            "SYNTHETIC_TENANT": "synthetic-probe",
            "API_QUEUE_URL": f"{endpoint}/123456789012/bench-message-records",
        }
    )
    return env  # PYTHONDONTWRITEBYTECODE is left unset: Lambda packages ship their .pyc files


def run_once(target: Target, env: dict[str, str], flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """One fresh interpreter; its result line (and, with interpreter `flags`, its stderr under "stderr")."""
    proc = subprocess.run(
        [sys.executable, *flags, str(CHILD), *target.argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            if flags:
                result["stderr"] = proc.stderr
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail) or 'no output'}")


def measure(targets: list[Target], repeat: int, env: dict[str, str]) -> None:
    """Round 0 warms up and is dropped; rounds 1..repeat are kept. A target that fails once is dropped."""
    started = time.monotonic()
    for round_ in range(repeat + 1):
        shift = round_ % len(targets)
        for target in targets[shift:] + targets[:shift]:
            if target.error is not None:
                continue
            try:
                result = run_once(target, env)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                target.error = str(exc)
                continue
            if round_ > 0:
                target.runs.append(result)
        label = "warm-up" if round_ == 0 else f"round {round_}/{repeat}"
        print(f"  {label} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


def _first_call(run: dict[str, Any]) -> str:
    setup = run.get("setup") or []
    return run["outcome"] + (f" (setup: {', '.join(setup)})" if setup else "")


def paired_ratio(target: Target, floor: Target, key: str = "total_ms") -> float:
    """The median over rounds of the target's time divided by the floor's time in the same round."""
    pairs = [t[key] / f["total_ms"] for t, f in zip(target.runs, floor.runs, strict=False) if f["total_ms"]]
    return statistics.median(pairs) if pairs else float("nan")


def report(floor: Target, validating: Target, handlers: list[Target], repeat: int) -> list[dict[str, Any]]:
    """Print the table; return one JSON-able row per handler."""
    floor_median = floor.median()
    validating_median = validating.median() if validating.runs else float("nan")
    print(f"Cold start, fresh interpreter per run, median and min of {repeat} runs (1 warm-up round dropped)")
    print(f"  {METHOD}")
    print(
        "Floor (Powertools REST resolver + pydantic's BaseModel + boto3 + one DynamoDB client):"
        f" median {floor_median:.1f} ms, min {floor.minimum():.1f} ms, {len(floor.modules)} modules imported"
    )
    print(
        "Reference, not the target (the floor + APIGatewayRestResolver(enable_validation=True)):"
        f" median {validating_median:.1f} ms"
    )
    print("Ratios are paired: the median over rounds of (handler / floor of the same round).")
    print()
    width = max([len("handler module"), *(len(h.name) for h in handlers)])
    print(
        f"{'handler module':<{width}}  {'init ms':>8}  {'min ms':>7}  {'ratio vs floor':>14}  {'verdict':<7}"
        f"  {'vs +valid.':>10}  {'import':>7}  {'setup':>6}  {'request':>7}  {'init+request':>12}"
        f"  {'+modules':>8}  first call"
    )
    print("-" * (width + 140))
    rows: list[dict[str, Any]] = []
    for h in handlers:
        if h.error is not None or not h.runs:
            print(f"{h.name:<{width}}  {'-':>8}  {'-':>7}  {'-':>14}  {'ERROR':<7}  {h.error}")
            rows.append({"module": h.name, "event": h.event_source, "error": h.error})
            continue
        median = h.median()
        ratio = paired_ratio(h, floor)
        with_request = paired_ratio(h, floor, "with_request_ms")
        verdict = "ok" if ratio <= TARGET_RATIO else "OVER"
        beyond = h.modules - floor.modules
        print(
            f"{h.name:<{width}}  {median:>8.1f}  {h.minimum():>7.1f}  {ratio:>13.3f}x  {verdict:<7}"
            f"  {paired_ratio(h, validating):>9.3f}x  {h.median('import_ms'):>7.1f}  {h.median('setup_ms'):>6.1f}"
            f"  {h.median('first_call_ms'):>7.1f}  {with_request:>11.3f}x  {len(beyond):>8}  {_first_call(h.runs[-1])}"
        )
        rows.append(
            {
                "module": h.name,
                "event": h.event_source,
                "first_call": _first_call(h.runs[-1]),
                "init_median_ms": round(median, 3),
                "init_min_ms": round(h.minimum(), 3),
                "ratio": round(ratio, 4),
                "ratio_of_medians": round(median / floor_median, 4),
                "ratio_vs_validating_floor": round(paired_ratio(h, validating), 4),
                "ratio_with_first_request": round(with_request, 4),
                "verdict": verdict,
                "import_median_ms": round(h.median("import_ms"), 3),
                "setup_median_ms": round(h.median("setup_ms"), 3),
                "first_request_median_ms": round(h.median("first_call_ms"), 3),
                "modules_imported": len(h.modules),
                "modules_beyond_floor": sorted(beyond),
                "modules_of_floor_not_imported": len(floor.modules - h.modules),
                "samples_ms": [r["total_ms"] for r in h.runs],
                "samples_with_request_ms": [r["with_request_ms"] for r in h.runs],
            }
        )
    print()
    print("Sample events: " + "; ".join(f"{h.name.rsplit('.', 1)[-1]}: {h.event_source}" for h in handlers))
    return rows


def figures(floor: Target, rows: list[dict[str, Any]]) -> list[Figure]:
    """The figures for results.json: the verdict ratio of every handler (target TARGET_RATIO), the ratio with the
    first request beside it, and the floor itself. A handler that could not be measured has no value."""
    out = [Figure("cold_start.floor.median_ms", round(floor.median(), 1), "ms")]
    for row in rows:
        short = row["module"].removeprefix("functions.").replace(".handlers.", ".").replace("benchmarks.", "")
        out.append(Figure(f"cold_start.{short}.init_vs_floor", row.get("ratio"), "x floor", target=TARGET_RATIO))
        out.append(
            Figure(
                f"cold_start.{short}.init_and_first_request_vs_floor", row.get("ratio_with_first_request"), "x floor"
            )
        )
    return out


def explain(over: list[tuple[Target, dict[str, Any]]], env: dict[str, str]) -> None:
    """For each handler over target, one `-X importtime` run: what it imports that the floor does not."""
    for target, row in over:
        try:
            stderr = run_once(target, env, flags=("-X", "importtime")).get("stderr", "")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"{target.name}: -X importtime run failed: {exc}")
            continue
        lines = _importtime.summarise(_importtime.parse(stderr), set(row["modules_beyond_floor"]))
        row["importtime_beyond_floor"] = lines
        print(f"{target.name} (one -X importtime run):")
        for line in lines:
            print(f"    {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="counted runs per target (default 15)")
    parser.add_argument("--only", default="", help="only handler modules whose name contains this")
    parser.add_argument(
        "--no-explain",
        dest="explain",
        action="store_false",
        help="skip the -X importtime run that names what an over-target handler imports beyond the floor",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    modules: list[HandlerModule] = [m for m in discover(ROOT) if args.only in m.name]
    if not modules:
        print("no handler modules found under functions/*/handlers/", file=sys.stderr)
        return 1
    events_dir = OUT_DIR / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    floor = Target(FLOOR, [FLOOR])
    validating = Target(VALIDATING_FLOOR, [VALIDATING_FLOOR])
    handlers = []
    for module in modules:
        event_path = events_dir / f"{module.name}.json"
        event_path.write_text(json.dumps(module.event, indent=2), encoding="utf-8")
        handlers.append(Target(module.name, ["handler", module.name, str(event_path)], module.event_source))

    started = time.monotonic()
    print(f"Measuring the floors and {len(handlers)} handler modules, {args.repeat} rounds", file=sys.stderr)
    with StubEndpoint() as endpoint:
        env = child_environment(endpoint)
        measure([floor, validating, *handlers], args.repeat, env)
        if floor.error is not None:
            print(f"the floor could not be measured: {floor.error}", file=sys.stderr)
            return 1
        rows = report(floor, validating, handlers, args.repeat)
        over = [(h, row) for h, row in zip(handlers, rows, strict=True) if row.get("verdict") == "OVER"]
        if args.explain:
            explain(over, env)
    elapsed = time.monotonic() - started

    within = sum(row.get("verdict") == "ok" for row in rows)
    unmeasured = sum("error" in row for row in rows)
    print(
        f"{within} of {len(handlers)} handlers within {TARGET_RATIO}x of the floor"
        + (f" ({unmeasured} could not be measured)" if unmeasured else "")
        + f"  [{elapsed:.0f} s]"
    )
    results = {
        "generated_at": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "method": METHOD,
        "repeat": args.repeat,
        "target_ratio": TARGET_RATIO,
        "floor": {
            "median_ms": round(floor.median(), 3),
            "min_ms": round(floor.minimum(), 3),
            "modules_imported": len(floor.modules),
            "samples_ms": [r["total_ms"] for r in floor.runs],
        },
        "validating_floor": {
            "median_ms": round(validating.median(), 3) if validating.runs else None,
            "samples_ms": [r["total_ms"] for r in validating.runs],
        },
        "handlers": rows,
        "within_target": within,
        "elapsed_s": round(elapsed, 1),
    }
    out = OUT_DIR / "cold_start.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    summary = record(figures(floor, rows))
    print(f"Results: {out.relative_to(ROOT)} (details), {summary.relative_to(ROOT)} (every figure with its target)")
    return 1 if unmeasured else 0


if __name__ == "__main__":
    sys.exit(main())
