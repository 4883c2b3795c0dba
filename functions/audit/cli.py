"""`ats-audit verify`: the auditor's offline check of an audit export against its signed digests.

    ats-audit verify --log <export file or dir> --digests <dir> --public-key <pem> [--tenant t] [--since instant]
                     [--until instant] [--jobs n] [--quiet]

Every digest's signature is checked with the public key, and its place in the tenant's chain (canonical bytes,
`previous_digest_sha256`, contiguous periods from the tenant's first, each shard continuing where it stopped; with
`--since`, a range export's: the first digest starts at that instant, continuing digests the export does not hold).
The export's lines are then taken period by period, as many as each digest counts, in (shard, seq) order: every
chain hash is recomputed from the signed start hash, each shard's chain must end at the signed end hash, and
the period's Merkle root must match. Lines left over after the last digest are entries no digest covers.

The first failure is printed, naming the entry (tenant, shard, seq, file and line) or the digest (file and
period); exit status 0 when everything verifies, 1 on a verification failure, 2 on unusable input (a missing
file, a key that is not an EC P-256 public key, a digest that does not parse).

Speed: the success path parses no JSON (one SHA-256 per line over bytes sliced from large blocks); the export
is cut at period boundaries into chunks verified in parallel processes (periods are independent once each
digest's start hashes are known), while the main process checks the digests. Only a failing period is parsed,
to name its first failing line.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from shared.audit_proof import (
    DigestFile,
    DigestFormatError,
    ExportLineError,
    KeyFormatError,
    describe_line,
    diagnose_period,
    digest_chain_problem,
    digest_file_problem,
    load_public_key,
    parse_digest,
    parse_export_line,
    period_plan,
    period_verifies,
    wrong_key_hint,
)

EXIT_VERIFIED = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2
_BLOCK = 16 * 1024 * 1024
_PARALLEL_MIN_ENTRIES = 100_000  # below this, starting processes costs more than it saves
_MIN_CHUNK_BYTES = 8 * 1024 * 1024
_PROGRESS_STEP_PERCENT = 10


class UsageError(Exception):
    """Input the verifier cannot use (exit 2)."""


@dataclass(frozen=True)
class Failure:
    order: tuple[int, int]  # (period index, 0 for the digest / 1 for its entries): the earliest is reported
    text: str
    bad_signature: bool = False


# --- reading export lines ---------------------------------------------------------------------------------------


class _Lines:
    """The lines of several files read as one stream from a starting point, in large blocks (no newlines kept;
    a last line without a newline is still a line)."""

    def __init__(self, files: Sequence[str], file_index: int = 0, offset: int = 0, line_no: int = 1) -> None:
        self._files = files
        self._file = file_index
        self._offset = offset
        self._next_line_no = line_no
        self._handle: BinaryIO | None = None
        self._carry = b""
        self._buffer: list[bytes] = []
        self._at = 0
        self._buffer_file = ""
        self._buffer_line_no = 1

    def take(self, count: int) -> tuple[list[bytes], list[tuple[int, str, int]]]:
        """The next `count` lines (fewer at the end) and their runs: (index in the list, file, line number)."""
        out: list[bytes] = []
        runs: list[tuple[int, str, int]] = []
        while len(out) < count:
            if self._at >= len(self._buffer) and not self._fill():
                break
            size = min(count - len(out), len(self._buffer) - self._at)
            runs.append((len(out), self._buffer_file, self._buffer_line_no + self._at))
            if not out and size == len(self._buffer) and self._at == 0:
                out = self._buffer
            else:
                out.extend(self._buffer[self._at : self._at + size])
            self._at += size
        return out, runs

    def _fill(self) -> bool:
        while True:
            if self._handle is None:
                if self._file >= len(self._files):
                    return False
                self._handle = open(self._files[self._file], "rb")  # noqa: SIM115 (kept open across calls)
                self._handle.seek(self._offset)
                self._carry = b""
            data = self._handle.read(_BLOCK)
            if data:
                lines = data.split(b"\n")
                lines[0] = self._carry + lines[0]
                self._carry = lines.pop()
                if lines:
                    self._load(lines)
                    return True
                continue
            self._handle.close()
            self._handle = None
            tail, self._carry = self._carry, b""
            path = self._files[self._file]
            self._file += 1
            self._offset = 0
            if tail:
                self._load([tail], path)
                self._next_line_no = 1
                return True
            self._next_line_no = 1

    def _load(self, lines: list[bytes], path: str | None = None) -> None:
        self._buffer = lines
        self._at = 0
        self._buffer_file = path or self._files[self._file]
        self._buffer_line_no = self._next_line_no
        self._next_line_no += len(lines)


def _locate(runs: list[tuple[int, str, int]], index: int) -> str:
    for start, path, line_no in reversed(runs):
        if start <= index:
            return f"{path}:{line_no + index - start}"
    return "the end of the export"


# --- verifying chunks of periods (in worker processes, or in this one) ------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """Consecutive periods and the export files holding exactly their lines (no line left over)."""

    files: tuple[str, ...]
    first_period: int
    digests: tuple[DigestFile, ...]
    key_pem: bytes  # keys do not pickle; a worker loads this once


@dataclass(frozen=True)
class _ChunkResult:
    entries: int
    failure: Failure | None


_keys: dict[bytes, EllipticCurvePublicKey] = {}


def _key(pem: bytes) -> EllipticCurvePublicKey:
    if pem not in _keys:
        _keys[pem] = load_public_key(pem)
    return _keys[pem]


def _verify_chunk(chunk: _Chunk, progress: Callable[[int], None] | None = None) -> _ChunkResult:
    """Each period in turn: its digest on its own (bytes, signature, consistency), then its lines."""
    key = _key(chunk.key_pem)
    reader = _Lines(chunk.files)
    verified = 0
    for number, item in enumerate(chunk.digests):
        index = chunk.first_period + number
        found = digest_file_problem(item, key)
        if found is not None:
            message, bad_signature = found
            period = f"{item.digest.period_start}..{item.digest.period_end}"
            return _ChunkResult(
                verified, Failure((index, 0), f"digest {item.name} (period {period}): {message}", bad_signature)
            )
        plan = period_plan(item.digest)
        lines, runs = reader.take(plan.count)
        if period_verifies(plan, lines):
            verified += plan.count
            if progress is not None:
                progress(plan.count)
            continue
        problem = diagnose_period(plan, lines)
        if problem is None:
            text = f"digest {item.name} (period {plan.period_start}): merkle_root does not match the period's entries"
        else:
            where = _locate(runs, problem.index) if problem.index < len(lines) else "the end of the export"
            what = f"shard {problem.shard} seq {problem.seq}" if problem.shard is not None else "entry"
            text = f"entry {what} at {where} (period {plan.period_start}): {problem.message}"
        return _ChunkResult(verified, Failure((index, 1), text))
    extra, runs = reader.take(1)
    if extra:
        text = f"entry at {_locate(runs, 0)}: no digest covers it ({describe_line(extra[0])})"
        return _ChunkResult(verified, Failure((chunk.first_period + len(chunk.digests), 1), text))
    return _ChunkResult(verified, None)


def _chunks(
    files: tuple[str, ...],
    firsts: dict[str, tuple[object, object]],
    digests: list[DigestFile],
    key_pem: bytes,
    jobs: int,
) -> list[_Chunk]:
    """The periods cut into chunks of about equal bytes where an export file starts with a period's first entry.

    A cut is a guess from the file's first line; it is sound whatever the files hold, since each chunk must
    consume exactly its files' lines: the chunks verify together only if one pass over the whole export would.
    """
    starts = {}
    for number, item in enumerate(digests):
        if item.digest.shards:
            first = item.digest.shards[0]
            starts[(first.shard, first.first_seq)] = number
    sizes = [os.path.getsize(path) for path in files]
    target = max(sum(sizes) // (jobs * 4), _MIN_CHUNK_BYTES)
    cuts = [(0, 0)]
    size = 0
    for number, path in enumerate(files):
        if number and size >= target:
            period = starts.get(firsts.get(path, (None, None)))  # type: ignore[arg-type]
            if period is not None and period > cuts[-1][1]:
                cuts.append((number, period))
                size = 0
        size += sizes[number]
    bounds = [*cuts, (len(files), len(digests))]
    return [
        _Chunk(files[file_from:file_to], period_from, tuple(digests[period_from:period_to]), key_pem)
        for (file_from, period_from), (file_to, period_to) in zip(bounds, bounds[1:], strict=False)
    ]


# --- one tenant --------------------------------------------------------------------------------------------------


class _Progress:
    def __init__(self, tenant: str, total: int, quiet: bool) -> None:
        self._tenant, self._total, self._quiet = tenant, total, quiet
        self._done = 0
        self._step = 0

    def __call__(self, entries: int) -> None:
        self._done += entries
        if self._quiet or not self._total:
            return
        percent = self._done * 100 // self._total
        if percent // _PROGRESS_STEP_PERCENT > self._step:
            self._step = percent // _PROGRESS_STEP_PERCENT
            print(
                f"ats-audit: {self._tenant}: {self._done:,} of {self._total:,} entries verified ({percent}%)",
                file=sys.stderr,
                flush=True,
            )


def _context() -> multiprocessing.context.BaseContext:
    # fork starts a worker in milliseconds; spawn (the only choice elsewhere) re-imports this module.
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)


def _parallel(chunks: list[_Chunk], jobs: int, progress: _Progress) -> bool:
    """Whether every chunk verifies, checked in `jobs` processes."""
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context()) as pool:
        futures = [pool.submit(_verify_chunk, chunk) for chunk in chunks]
        for future in futures:
            result = future.result()
            progress(result.entries)
            if result.failure is not None:
                pool.shutdown(cancel_futures=True)
                return False
    return True


def _verify_tenant(
    tenant: str,
    digests: list[DigestFile],
    logs: list[str],
    firsts: dict[str, tuple[object, object]],
    key_pem: bytes,
    args: argparse.Namespace,
) -> tuple[Failure | None, int]:
    files = tuple(logs)
    total = sum(item.digest.count for item in digests)
    progress = _Progress(tenant, total, args.quiet)
    chained = digest_chain_problem(digests, until=args.until, since=args.since)
    stop = chained.index if chained is not None else len(digests)
    jobs = args.jobs or (os.cpu_count() or 1)
    if chained is None and jobs > 1 and total >= _PARALLEL_MIN_ENTRIES:
        chunks = _chunks(files, firsts, digests, key_pem, jobs)
        if len(chunks) > 1 and _parallel(chunks, jobs, progress):
            return None, total
        progress = _Progress(tenant, total, quiet=True)  # a chunk failed: one pass in order names the first failure
    # Periods after a digest out of chain are not checked: the chain problem is reported unless something earlier is.
    failure = _verify_chunk(_Chunk(files, 0, tuple(digests[: stop + 1]), key_pem), progress).failure
    if chained is not None:
        chain_failure = Failure(
            (chained.index, 0), f"digest {chained.name} (period {chained.period}): {chained.message}"
        )
        if failure is None or chain_failure.order <= failure.order:
            failure = chain_failure
    if failure is not None and failure.bad_signature:
        failure = Failure(failure.order, failure.text + wrong_key_hint(digests, _key(key_pem)), True)
    return failure, total


# --- input --------------------------------------------------------------------------------------------------------


def _read_key(path: Path) -> bytes:
    """The public key file's bytes, once they are known to hold an EC P-256 public key."""
    try:
        data = path.read_bytes()
        load_public_key(data)
    except OSError as exc:
        raise UsageError(f"cannot read the public key {path}: {exc.strerror}") from None
    except KeyFormatError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return data


def _load_digests(root: Path) -> dict[str, list[DigestFile]]:
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory of digest files")
    paths = sorted(root.rglob("*.json"))
    if not paths:
        raise UsageError(f"no digest files (*.json) under {root}")
    by_tenant: dict[str, list[DigestFile]] = {}
    for path in paths:
        raw = path.read_bytes()
        try:
            digest = parse_digest(raw)
        except DigestFormatError as exc:
            raise UsageError(f"{path}: {exc}") from None
        by_tenant.setdefault(digest.tenant, []).append(DigestFile(str(path), raw, digest))
    for files in by_tenant.values():
        files.sort(key=lambda item: (item.digest.period_start, item.name))
    return by_tenant


def _log_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(path.rglob("*.jsonl"))
    raise UsageError(f"no export at {path}")


def _first_line(path: Path) -> bytes | None:
    with path.open("rb") as handle:
        line = handle.readline(1 << 20)
    return line.rstrip(b"\n") if line else None


def _group_logs(
    paths: list[Path], tenants: set[str], chosen: str | None
) -> tuple[dict[str, list[str]], dict[str, tuple[object, object]], str | None]:
    """Export files by the tenant of their first entry (empty files hold no entries), the (shard, seq) each file
    starts with, and a problem when a file's first line does not parse and more than one tenant could own it."""
    by_tenant: dict[str, list[str]] = {}
    firsts: dict[str, tuple[object, object]] = {}
    for path in paths:
        line = _first_line(path)
        if line is None:
            continue
        try:
            entry = parse_export_line(line).entry
            tenant = entry.get("tenant")
            firsts[str(path)] = (entry.get("shard"), entry.get("seq"))
        except ExportLineError as exc:
            candidates = [chosen] if chosen else sorted(tenants)
            if len(candidates) != 1:
                return by_tenant, firsts, f"{path}:1: not an entry, so its tenant is unknown ({exc})"
            tenant = candidates[0]
        by_tenant.setdefault(str(tenant), []).append(str(path))
    return by_tenant, firsts, None


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 instant: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("the instant needs a time zone (e.g. Z)")
    return moment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ats-audit", description="Tools for the provable audit trail.")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify",
        help="verify an audit export against its signed digests",
        description="Verify an audit export against its signed digests. Exit 0: verified; 1: verification "
        "failed (the first failing entry or digest is printed); 2: unusable input.",
    )
    verify.add_argument("--log", required=True, type=Path, help="an export file, or a directory of *.jsonl files")
    verify.add_argument("--digests", required=True, type=Path, help="a directory of digest files (*.json)")
    verify.add_argument("--public-key", required=True, type=Path, help="the signing key's public key (PEM, SPKI)")
    verify.add_argument("--tenant", help="verify this tenant only")
    verify.add_argument(
        "--since",
        type=_instant,
        help="a range export: the digests start at this instant (ISO-8601) and continue earlier ones not exported",
    )
    verify.add_argument(
        "--until", type=_instant, help="the digests must cover every period up to this instant (ISO-8601)"
    )
    verify.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per CPU)")
    verify.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `ats-audit` console script."""
    args = _parser().parse_args(argv)
    try:
        return _verify(args)
    except UsageError as exc:
        print(f"ats-audit: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE


def _verify(args: argparse.Namespace) -> int:
    if args.jobs < 0:
        raise UsageError("--jobs must be 0 (one per CPU) or more")
    key = _read_key(args.public_key)
    digests = _load_digests(args.digests)
    logs, firsts, unknown = _group_logs(_log_files(args.log), set(digests), args.tenant)
    if unknown is not None:
        print(f"FAILED: {unknown}")
        return EXIT_FAILED
    tenants = sorted(set(digests) | set(logs))
    if args.tenant is not None:
        if args.tenant not in tenants:
            raise UsageError(f"neither digests nor entries of tenant {args.tenant!r}")
        tenants = [args.tenant]
    status = EXIT_VERIFIED
    for tenant in tenants:
        files = digests.get(tenant, [])
        if not files:
            print(f"FAILED {tenant}: entry at {logs[tenant][0]}:1: no digest of the tenant covers its entries")
            status = EXIT_FAILED
            continue
        failure, total = _verify_tenant(tenant, files, logs.get(tenant, []), firsts, key, args)
        if failure is not None:
            print(f"FAILED {tenant}: {failure.text}")
            status = EXIT_FAILED
            continue
        first, last = files[0].digest, files[-1].digest
        print(
            f"OK {tenant}: {total:,} entries in {len(files):,} periods {first.period_start}..{last.period_end}, "
            "every digest signed and chained"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
