"""`ats-audit verify`: an export and its signed digests verify, and every tampering is caught and named."""

from __future__ import annotations

import base64
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.audit import cli
from functions.audit.cli import main
from shared.audit_proof import (
    GENESIS,
    LocalSigner,
    build_digest,
    digest_bytes,
    digest_object_key,
    export_line,
    export_object_key,
    format_instant,
    link,
    parse_digest,
    parse_export_line,
    signed_message,
)

T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ATS_AUDIT = Path(sys.executable).parent / "ats-audit"


@dataclass
class Trail:
    """An export directory, a digest directory and the public key, as an auditor receives them."""

    root: Path
    signer: LocalSigner
    lines: list[tuple[Path, int, dict[str, Any]]] = field(default_factory=list)  # file, line number, entry
    digest_files: list[Path] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.root / "audit" / "exports"

    @property
    def digests(self) -> Path:
        return self.root / "audit" / "digests"

    @property
    def key(self) -> Path:
        return self.root / "public.pem"

    def args(self, *extra: str, log: Path | None = None) -> list[str]:
        base = ["verify", "--log", str(log or self.log), "--digests", str(self.digests), "--public-key", str(self.key)]
        return [*base, "--jobs", "1", *extra]

    def find(self, shard: int, seq: int, tenant: str = "acme") -> tuple[Path, int]:
        for path, number, entry in self.lines:
            if (entry["tenant"], entry["shard"], entry["seq"]) == (tenant, shard, seq):
                return path, number
        raise LookupError((tenant, shard, seq))


def make_entry(tenant: str, shard: int, seq: int, at: datetime) -> dict[str, Any]:
    return {
        "v": 2,
        "tenant": tenant,
        "shard": shard,
        "seq": seq,
        "at": format_instant(at),
        "actor": "user:7f3a9c2e-1b44-4c1d-9e55-0a2b3c4d5e6f",
        "action": "candidate.read",
        "resource": f"candidates/{seq:08d}",
        "outcome": "allowed" if seq % 5 else "denied",
        "request_id": f"req-{shard}-{seq}",
        "source_ip": "203.0.113.7",
    }


DEFAULT_PERIODS = ((3, 2), (0, 0), (4, 0, 2), (2, 3, 1))  # entries per shard, per hourly period


def write_trail(
    root: Path,
    periods: tuple[tuple[int, ...], ...] = DEFAULT_PERIODS,
    *,
    tenant: str = "acme",
    signer: LocalSigner | None = None,
    trail: Trail | None = None,
) -> Trail:
    """Entries linked per shard, one export file and one signed digest per period, laid out as in S3."""
    trail = trail or Trail(root, signer or LocalSigner.generate("arn:aws:kms:eu-west-1:123456789012:key/test"))
    trail.key.write_bytes(trail.signer.public_key_pem())
    heads: dict[int, tuple[int, bytes]] = {}
    previous: bytes | None = None
    for number, counts in enumerate(periods):
        start = T0 + number * HOUR
        linked = []
        for shard, count in enumerate(counts):
            last_seq, last_hash = heads.get(shard, (0, GENESIS))
            run = link(
                [make_entry(tenant, shard, last_seq + i + 1, start + timedelta(seconds=i)) for i in range(count)],
                last_hash,
            )
            if run:
                heads[shard] = (last_seq + count, run[-1].hash)
            linked.extend(run)
        digest = build_digest(
            tenant=tenant,
            period_start=start,
            period_end=start + HOUR,
            entries=linked,
            previous=previous,
            signer=trail.signer,
        )
        previous = digest_bytes(digest)
        digest_path = trail.root / digest_object_key(tenant, digest.period_start)
        digest_path.parent.mkdir(parents=True, exist_ok=True)
        digest_path.write_bytes(previous)
        trail.digest_files.append(digest_path)
        export_path = trail.root / export_object_key(tenant, digest.period_start)
        export_path.parent.mkdir(parents=True, exist_ok=True)
        export_path.write_bytes(b"".join(export_line(item.entry, item.hash) for item in linked))
        trail.lines.extend((export_path, index + 1, dict(item.entry)) for index, item in enumerate(linked))
    return trail


def edit_lines(path: Path, change) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(change(lines)))


def verify(trail: Trail, capsys, *extra: str, log: Path | None = None) -> tuple[int, str, str]:
    status = main(trail.args(*extra, log=log))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def trail(tmp_path: Path) -> Trail:
    return write_trail(tmp_path)


# --- verified ---------------------------------------------------------------------------------------------------


def test_an_untouched_export_verifies_with_progress_on_stderr(trail, capsys):
    status, out, err = verify(trail, capsys)
    assert status == 0
    assert out.startswith("OK acme: 17 entries in 4 periods 2026-11-27T00:00:00Z..2026-11-27T04:00:00Z")
    assert "acme: 17 of 17 entries verified (100%)" in err and "entries verified (29%)" in err


def test_quiet_prints_no_progress(trail, capsys):
    status, out, err = verify(trail, capsys, "--quiet")
    assert (status, err) == (0, "") and out.startswith("OK acme")


def test_one_file_holding_every_period_verifies(trail, capsys, tmp_path):
    single = tmp_path / "export.jsonl"
    single.write_bytes(b"".join(path.read_bytes() for path in sorted(trail.log.rglob("*.jsonl"))))
    assert verify(trail, capsys, log=single)[0] == 0


def test_entries_written_before_a_new_optional_field_still_verify(trail, capsys):
    # Given an export written before the writer's model had `resources`
    assert verify(trail, capsys)[0] == 0
    original = {path: path.read_bytes() for path, _, _ in trail.lines}
    # When the new writer's model (the field added, None when absent) re-writes every entry
    for path in original:
        rewritten = []
        for line in path.read_bytes().splitlines():
            stored, entry, _ = parse_export_line(line)
            rewritten.append(export_line({**entry, "resources": None}, stored))
        path.write_bytes(b"".join(rewritten))
    # Then not a byte changed and the export still verifies: an absent field is not hashed
    assert all(path.read_bytes() == data for path, data in original.items())
    assert verify(trail, capsys)[0] == 0


# --- entries tampered -------------------------------------------------------------------------------------------


def test_one_byte_changed_in_an_entry_is_named(trail, capsys):
    path, number = trail.find(1, 4)
    edit_lines(
        path,
        lambda lines: [
            line.replace(b"candidates/", b"candidatez/") if i == number - 1 else line for i, line in enumerate(lines)
        ],
    )
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert out.startswith(f"FAILED acme: entry shard 1 seq 4 at {path}:{number} (period 2026-11-27T03:00:00Z)")
    assert "entry altered" in out


def test_a_changed_stored_hash_alone_is_not_evidence(trail, capsys):
    path, number = trail.find(0, 2)
    edit_lines(path, lambda lines: [b"0" * 64 + line[64:] if i == number - 1 else line for i, line in enumerate(lines)])
    assert verify(trail, capsys)[0] == 0


def test_a_deleted_entry_is_named(trail, capsys):
    path, number = trail.find(0, 5)
    edit_lines(path, lambda lines: [line for i, line in enumerate(lines) if i != number - 1])
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert f"entry shard 0 seq 5 at {path}:{number}" in out
    assert "entry missing: seq 5..5 of shard 0 absent (seq 6 stands here)" in out


def test_an_inserted_entry_is_named(trail, capsys):
    path, number = trail.find(0, 4)
    forged = export_line(make_entry("acme", 0, 4, T0 + 2 * HOUR), bytes(32))
    edit_lines(path, lambda lines: lines[:number] + [forged] + lines[number:])
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert f"entry shard 0 seq 5 at {path}:{number + 1}" in out and "inserted or duplicated: shard 0 seq 4 again" in out


def test_reordered_entries_are_named(trail, capsys):
    path, number = trail.find(2, 1)
    edit_lines(path, lambda lines: lines[: number - 1] + [lines[number], lines[number - 1]] + lines[number + 1 :])
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert f"entry shard 2 seq 1 at {path}:{number}" in out
    assert "out of order: shard 2 seq 2 stands here, shard 2 seq 1 1 lines later" in out


def test_an_entry_moved_to_another_tenant_file_is_named(tmp_path, capsys):
    trail = write_trail(tmp_path)
    write_trail(tmp_path, ((2,),), tenant="globex", trail=trail)
    path, number = trail.find(0, 1, tenant="globex")
    acme_path, acme_number = trail.find(1, 1)
    edit_lines(
        acme_path,
        lambda lines: [
            path.read_bytes().splitlines(keepends=True)[0] if i == acme_number - 1 else line
            for i, line in enumerate(lines)
        ],
    )
    status, out, _ = verify(trail, capsys)
    assert status == 1 and "OK globex" in out
    assert f"FAILED acme: entry shard 1 seq 1 at {acme_path}:{acme_number}" in out and "tenant 'globex'" in out


def test_entries_rewritten_with_recomputed_hashes_fail_at_the_signed_end_hash(trail, capsys):
    # Given an attacker who changes shard 0 seq 5 and recomputes the stored hashes of its shard's run (seq 4..7)
    path, first = trail.find(0, 4)
    lines = path.read_bytes().splitlines(keepends=True)
    entries = [parse_export_line(line).entry for line in lines[first - 1 : first + 3]]
    entries[1]["outcome"] = "denied" if entries[1]["outcome"] == "allowed" else "allowed"
    before = trail.find(0, 3)
    start = parse_export_line(before[0].read_bytes().splitlines()[before[1] - 1]).stored_hash
    relinked = [export_line(item.entry, item.hash) for item in link(entries, start)]
    path.write_bytes(b"".join(lines[: first - 1] + relinked + lines[first + 3 :]))
    # Then every line agrees with its stored hash, but the run does not end at the signed end hash
    status, out, _ = verify(trail, capsys)
    assert status == 1 and f"entry shard 0 seq 4 at {path}:{first}" in out
    assert "seq 4..7 do not chain to the signed end hash" in out


def test_a_truncated_tail_is_named(trail, capsys):
    last = trail.lines[-1][0]
    edit_lines(last, lambda lines: lines[:-2])
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert "FAILED acme: entry shard 1 seq 5 at the end of the export (period 2026-11-27T03:00:00Z)" in out
    assert "2 entries of the period missing" in out


# --- digests tampered -------------------------------------------------------------------------------------------


def test_a_changed_digest_is_named(trail, capsys):
    target = trail.digest_files[2]
    target.write_bytes(target.read_bytes().replace(b'"count":6', b'"count":7'))
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert out.startswith(f"FAILED acme: digest {target} (period 2026-11-27T02:00:00Z..2026-11-27T03:00:00Z)")
    assert "signature does not verify" in out


def test_a_missing_digest_is_named(trail, capsys):
    trail.digest_files[1].unlink()
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert (
        f"digest {trail.digest_files[2]}" in out
        and "digest missing for 2026-11-27T01:00:00Z..2026-11-27T02:00:00Z" in out
    )


def test_a_digest_out_of_chain_is_named(trail, capsys):
    # Given a validly signed digest whose previous_digest_sha256 names other bytes than the file before it
    target = trail.digest_files[3]
    unsigned = parse_digest(target.read_bytes()).model_copy(
        update={"previous_digest_sha256": "ab" * 32, "signature": None}
    )
    signature = base64.b64encode(trail.signer.sign(signed_message(unsigned))).decode()
    target.write_bytes(digest_bytes(unsigned.model_copy(update={"signature": signature})))
    status, out, _ = verify(trail, capsys)
    assert status == 1 and f"digest {target}" in out and "out of chain" in out


def test_a_missing_last_digest_leaves_entries_no_digest_covers(trail, capsys):
    trail.digest_files[-1].unlink()
    path, number = trail.find(0, 8)
    status, out, _ = verify(trail, capsys)
    assert status == 1
    assert f"entry at {path}:{number}: no digest covers it (tenant 'acme' shard 0 seq 8)" in out


def test_a_tail_cut_with_its_digest_is_caught_by_until(trail, capsys):
    trail.digest_files[-1].unlink()
    trail.lines[-1][0].unlink()
    assert verify(trail, capsys)[0] == 0  # indistinguishable from an earlier export without an expected end
    status, out, _ = verify(trail, capsys, "--until", "2026-11-27T04:00:00Z")
    assert status == 1 and "digests end before 2026-11-27T04:00:00+00:00" in out


def test_a_wrong_public_key_fails_every_digest(trail, capsys):
    trail.key.write_bytes(LocalSigner.generate().public_key_pem())
    status, out, _ = verify(trail, capsys)
    assert status == 1 and "wrong public key?" in out and f"digest {trail.digest_files[0]}" in out


def test_the_first_failure_is_reported_when_several(trail, capsys):
    trail.digest_files[3].write_bytes(trail.digest_files[3].read_bytes().replace(b'"count":6', b'"count":5'))
    path, number = trail.find(0, 1)
    edit_lines(path, lambda lines: lines[1:])
    status, out, _ = verify(trail, capsys)
    assert status == 1 and out.startswith(f"FAILED acme: entry shard 0 seq 1 at {path}:1")


# --- tenants and unusable input ---------------------------------------------------------------------------------


def test_tenant_selects_one_tenant(tmp_path, capsys):
    trail = write_trail(tmp_path)
    write_trail(tmp_path, ((2, 1),), tenant="globex", trail=trail)
    path, _ = trail.find(0, 1, tenant="globex")
    path.write_bytes(path.read_bytes().replace(b"allowed", b"Allowed", 1))
    status, out, _ = verify(trail, capsys)
    assert status == 1 and "OK acme" in out and "FAILED globex" in out
    status, out, _ = verify(trail, capsys, "--tenant", "acme")
    assert status == 0 and "globex" not in out


@pytest.mark.parametrize("broken", ["log", "key", "pem", "digest", "digests"])
def test_unusable_input_exits_2_with_a_message(trail, capsys, broken):
    args = trail.args()
    if broken == "log":
        args[args.index("--log") + 1] = str(trail.root / "absent")
    elif broken == "key":
        trail.key.unlink()
    elif broken == "pem":
        trail.key.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    elif broken == "digest":
        trail.digest_files[1].write_bytes(b'{"v":2,"tenant":')
    else:
        args[args.index("--digests") + 1] = str(trail.root / "absent")
    status = main(args)
    captured = capsys.readouterr()
    assert status == 2 and captured.err.startswith("ats-audit: error: ") and captured.out == ""


# --- parallel verification and the installed script -------------------------------------------------------------


def test_parallel_chunks_verify_and_name_the_first_failure(tmp_path, capsys, monkeypatch):
    # Given chunks of a few periods each, verified in two processes
    monkeypatch.setattr(cli, "_PARALLEL_MIN_ENTRIES", 1)
    monkeypatch.setattr(cli, "_MIN_CHUNK_BYTES", 1)
    monkeypatch.setattr(cli, "_BLOCK", 256)  # several blocks per file
    trail = write_trail(tmp_path, tuple((3, 2, 1) for _ in range(12)))
    parallel = [*trail.args()[:-2], "--jobs", "2"]
    files = sorted(trail.log.rglob("*.jsonl"))
    logs, firsts, _ = cli._group_logs(files, {"acme"}, None)
    chunks = cli._chunks(tuple(logs["acme"]), firsts, cli._load_digests(trail.digests)["acme"], b"", 2)
    assert len(chunks) > 2 and sum(len(chunk.files) for chunk in chunks) == 12
    assert main(parallel) == 0
    assert "100%" in capsys.readouterr().err
    # When an entry late in the export and another in a middle chunk are changed
    for shard, seq in ((0, 22), (1, 14)):
        path, number = trail.find(shard, seq)
        edit_lines(
            path, lambda lines, n=number: [b"f" + line[1:] if i == n - 1 else line for i, line in enumerate(lines)]
        )
        lines = path.read_bytes().splitlines(keepends=True)
        lines[number - 1] = lines[number - 1].replace(b"candidates/", b"candidatez/")
        path.write_bytes(b"".join(lines))
    # Then the earlier one is named, as one pass would name it
    status = main(parallel)
    out = capsys.readouterr().out
    path, number = trail.find(1, 14)
    assert status == 1 and out.startswith(f"FAILED acme: entry shard 1 seq 14 at {path}:{number}")


def test_the_installed_console_script_verifies(trail):
    assert ATS_AUDIT.exists(), "run `make dev`: the project is installed with its ats-audit script"
    ok = subprocess.run([str(ATS_AUDIT), *trail.args()], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("OK acme") and "100%" in ok.stderr
    trail.digest_files[0].unlink()
    failed = subprocess.run([str(ATS_AUDIT), *trail.args("--quiet")], capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "FAILED acme" in failed.stdout and failed.stderr == ""
