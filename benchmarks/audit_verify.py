"""Audit verification speed (issue 13), into `.local/bench/results.json`:

- `audit.verify.speed_vs_sha256`: the throughput of `ats-audit verify` (every signature, digest link, chain hash
  and Merkle root checked, as the CLI does it) over the throughput of plain streaming `hashlib.sha256` over the
  same export bytes read from the same files; target a third. Both run in the same process, paired round by
  round, page cache warm; the median of the paired ratios is recorded.
- `audit.verify.entries_per_second`: entries verified per second in the median round (no target).

The export is 1,000,000 realistic entries (about 280 bytes of canonical JSON each) of one tenant in 4 shards over
hourly periods (quiet hours hold few entries, some none), one export file and one signed digest per period,
laid out under `.local/bench/audit_verify/` as the S3 keys suggest. Generating it is not measured and is done
once: a manifest names the generator's version, and a matching one is reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.results import Figure, record
from functions.audit.cli import main as ats_audit
from shared.audit_proof import (
    GENESIS,
    LinkedEntry,
    LocalSigner,
    build_digest,
    digest_bytes,
    digest_object_key,
    export_line,
    export_object_key,
    format_instant,
    link,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".local" / "bench" / "audit_verify"
ENTRIES = 1_000_000
SHARDS = 4
TENANT = "acme"
TARGET_RATIO = 0.3334
ROUNDS = 5
GENERATOR = "v1"
START = datetime(2026, 10, 1, tzinfo=UTC)
_ACTIONS = (
    "candidate.read",
    "candidate.update",
    "application.read",
    "application.stage.change",
    "message.read",
    "vacancy.publish",
    "export.download",
)
_BLOCK = 16 * 1024 * 1024


def _hour_count(hour: int, rng: random.Random) -> int:
    """Entries in an hour: busy office hours, a quiet night, now and then an hour with none."""
    of_day = hour % 24
    if of_day in (2, 3) and rng.random() < 0.5:
        return 0
    base = 1500 if 7 <= of_day < 19 else 250
    return int(base * rng.uniform(0.7, 1.3))


def _entry(rng: random.Random, shard: int, seq: int, at: datetime, actors: list[str]) -> dict[str, Any]:
    outcome = "allowed" if rng.random() < 0.93 else rng.choice(("denied", "failed"))
    entry: dict[str, Any] = {
        "v": 2,
        "tenant": TENANT,
        "shard": shard,
        "seq": seq,
        "at": format_instant(at),
        "actor": rng.choice(actors),
        "action": rng.choice(_ACTIONS),
        "resource": f"candidates/{uuid.UUID(int=rng.getrandbits(128))}",
        "outcome": outcome,
        "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "source_ip": f"203.0.113.{rng.randrange(1, 255)}",
    }
    if outcome != "allowed":
        entry["reason"] = "missing role recruiter" if outcome == "denied" else "dependency timeout"
    if rng.random() < 0.05:
        entry["resources"] = [f"app-{rng.getrandbits(40):010x}" for _ in range(rng.randrange(2, 5))]
    return entry


def generate(out: Path = OUT, entries: int = ENTRIES) -> dict[str, Any]:
    """Write the export, the digests and the public key under `out` (reused when its manifest matches)."""
    manifest_path = out / "manifest.json"
    wanted = {"generator": GENERATOR, "entries": entries, "shards": SHARDS, "tenant": TENANT}
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if {key: manifest.get(key) for key in wanted} == wanted:
            return manifest
    for stale in sorted(out.rglob("*"), reverse=True) if out.exists() else []:
        stale.unlink() if stale.is_file() else stale.rmdir()
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(13)
    signer = LocalSigner.generate("arn:aws:kms:eu-west-1:123456789012:key/bench-audit-digests")
    (out / "public.pem").write_bytes(signer.public_key_pem())
    actors = [f"user:{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(200)]
    heads = dict.fromkeys(range(SHARDS), (0, GENESIS))
    previous: bytes | None = None
    written = hour = 0
    while written < entries:
        start = START + timedelta(hours=hour)
        count = min(_hour_count(hour, rng), entries - written)
        by_shard: dict[int, list[dict[str, Any]]] = {shard: [] for shard in range(SHARDS)}
        for index in range(count):
            shard = rng.randrange(SHARDS)
            seq = heads[shard][0] + len(by_shard[shard]) + 1
            at = start + timedelta(microseconds=index * 3_600_000_000 // max(count, 1))
            by_shard[shard].append(_entry(rng, shard, seq, at, actors))
        linked: list[LinkedEntry] = []
        for shard in range(SHARDS):
            run = link(by_shard[shard], heads[shard][1])
            if run:
                heads[shard] = (heads[shard][0] + len(run), run[-1].hash)
            linked.extend(run)
        digest = build_digest(
            tenant=TENANT,
            period_start=start,
            period_end=start + timedelta(hours=1),
            entries=linked,
            previous=previous,
            signer=signer,
        )
        previous = digest_bytes(digest)
        for key, data in (
            (digest_object_key(TENANT, digest.period_start), previous),
            (export_object_key(TENANT, digest.period_start), b"".join(export_line(i.entry, i.hash) for i in linked)),
        ):
            path = out / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        written += count
        hour += 1
    manifest = {**wanted, "periods": hour}
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def _export_files(out: Path) -> list[Path]:
    return sorted((out / "audit" / "exports").rglob("*.jsonl"))


def sha256_seconds(files: list[Path]) -> tuple[float, int]:
    """(a): plain streaming SHA-256 over the export's bytes, read from its files."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    size = 0
    for path in files:
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
                size += len(block)
    digest.hexdigest()
    return time.perf_counter() - started, size


def verify_seconds(out: Path) -> float:
    """(b): the full verification, as `ats-audit verify` runs it."""
    argv = ["verify", "--log", str(out / "audit" / "exports"), "--digests", str(out / "audit" / "digests")]
    argv += ["--public-key", str(out / "public.pem"), "--quiet"]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = ats_audit(argv)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"the benchmark's export did not verify (exit {status})")
    return elapsed


def main() -> None:
    started = time.perf_counter()
    manifest = generate()
    took = time.perf_counter() - started
    print(f"export: {manifest['entries']:,} entries, {manifest['periods']:,} periods (ready in {took:.1f} s)")
    files = _export_files(OUT)
    sha256_seconds(files)  # warm the page cache
    ratios, verify_times = [], []
    size = 0
    for round_number in range(ROUNDS):
        plain, size = sha256_seconds(files)
        full = verify_seconds(OUT)
        ratios.append(plain / full)
        verify_times.append(full)
        print(
            f"round {round_number + 1}: sha256 {size / plain / 1e6:.0f} MB/s, verify {size / full / 1e6:.0f} MB/s "
            f"({ENTRIES / full:,.0f} entries/s), ratio {plain / full:.3f}",
            file=sys.stderr,
        )
    ratio = statistics.median(ratios)
    per_second = ENTRIES / statistics.median(verify_times)
    print(
        f"verify vs sha256: {ratio:.3f} (median of {ROUNDS}; best {max(ratios):.3f}; target >= {TARGET_RATIO}); "
        f"{per_second:,.0f} entries/s; {size / ENTRIES:.0f} bytes per export line; {os.cpu_count()} CPUs"
    )
    path = record(
        [
            Figure("audit.verify.speed_vs_sha256", round(ratio, 4), "ratio", TARGET_RATIO, "higher"),
            Figure("audit.verify.entries_per_second", round(per_second), "entries/s", None, "higher"),
        ]
    )
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
