"""Messages figure (issue 12, section 6), measured rather than timed:

- `messages.export.peak_memory_growth_mb`: how far the process's resident memory rises above where it stood
  when one eDiscovery export of 100,000 messages starts, to its highest point until the manifest is written
  (target < 100). Linux's own high-water mark (`VmHWM`, reset through `/proc/self/clear_refs` at the start):
  every allocation counts, the C libraries' too, and nothing slows the export down as tracemalloc would
  (where /proc is missing, tracemalloc's peak is the fallback).

What runs is the export's own code end to end: `run_export_step` until the job is finished, the job item and the
audit trail on moto's DynamoDB, content sealed and opened with the platform's FieldCipher on moto's KMS, and the
real S3 adapter (`S3ExportFiles`: 8 MiB part buffers, natives uploaded on its threads) whose client answers from
a temporary directory. Two stand-ins, both because the emulator would measure itself instead of the export:

- the uploads land on disk: moto keeps every object it is sent in memory, which would be counted as the export's
  (tests/unit/test_messages_export.py's `DiskS3` answers the same calls from a directory);
- the messages are made a page at a time by a generator with `benchmarks/messages.py`'s distribution (1,000
  candidates, 50 requisitions, every channel, several statuses, 90 days), sealed like the ingest consumer
  seals them: moto's DynamoDB Query reads every item of the table for each page (seconds per page at this
  size, hours for the whole export). `through_dynamodb=True` seeds moto instead and reads through
  `DynamoMessageStore`, for a check at a few thousand messages.

Run: `python -m benchmarks.messages_export [count]`.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.messages import NOW, TABLE, moto_world
from benchmarks.results import Figure, record
from benchmarks.retention import ENV, _put_directly

MESSAGES = 100_000
TARGET_MB = 100


class GeneratedMessages:
    """The export's message source: `count` messages of tenant `acme`, made when their page is asked for (none
    kept), sealed content on nine in ten. The cursor is the offset of the next message."""

    def __init__(self, count: int, cipher: Any, *, page_size: int = 100) -> None:
        self._count, self._cipher, self._page_size = count, cipher, page_size

    def page(self, job: Any, cursor: str | None) -> Any:
        from functions.messages.dal.messages import Page

        start = int(cursor or 0)
        end = min(start + self._page_size, self._count)
        messages = [message(i, self._cipher) for i in range(start, end)]
        return Page(messages, str(end) if end < self._count else None, len(messages))


def message(i: int, cipher: Any) -> Any:
    from functions.messages.logic.lifecycle import message_id_for
    from functions.messages.models.message import Channel, Direction, HistoryEntry, MessageState, Party, Status

    channels = list(Channel)
    statuses = [Status.DELIVERED, Status.OPENED, Status.SENT, Status.BOUNCED, Status.CLICKED]
    channel, status = channels[i % len(channels)], statuses[i % len(statuses)]
    at = NOW - timedelta(days=90) + timedelta(seconds=77 * i)
    message_id = message_id_for("acme", "sendgrid", f"seed-{i}")
    email = channel is Channel.EMAIL
    state = MessageState(
        tenant="acme",
        message_id=message_id,
        channel=channel,
        direction=Direction.OUTBOUND,
        provider="sendgrid",
        message_key=f"seed-{i}",
        status=status,
        first_at=at,
        last_at=at,
        history=[HistoryEntry(f"seed-{i}-e", status, at, "sendgrid", status.value)],
        rfc_message_id=f"seed-{i}@mail.acme.example" if email else None,
        candidate_id=f"cand-{i % 1000}",
        requisition_id=f"req-{i % 50}",
        sender=Party("jobs@acme.example", "Acme Recruiting") if email else Party("+447700900123"),
        recipients=(Party(f"candidate{i % 1000}@example.com", "Candidate"),) if email else (Party("+447700900456"),),
        version=1,
    )
    if i % 10 != 9:
        body = f"Hello,\nthank you for applying to requisition {i % 50}. Your interview is on day {i % 28}.\n" * 3
        state.sealed_subject = cipher.encrypt("acme", "message", f"Interview {i}", record=message_id, field="subject")
        state.sealed_body = cipher.encrypt("acme", "message", body, record=message_id, field="body")
    return state


def _seed_dynamodb(count: int, cipher: Any) -> None:
    from functions.messages.dal.items import to_item

    for start in range(0, count, 1000):
        _put_directly(TABLE, [to_item(message(i, cipher)) for i in range(start, min(start + 1000, count))])


def export_peak_memory_mb(n: int = MESSAGES, *, through_dynamodb: bool = False) -> float:
    """tracemalloc's peak growth, in MB, while an export of `n` messages runs from its first step to its manifest
    (content included, so every sealed field is opened)."""
    import os

    from functions.messages.dal.export_files import S3ExportFiles
    from functions.messages.dal.exports import DynamoExportStore
    from functions.messages.dal.messages import DynamoMessageStore
    from functions.messages.logic.export import SearchSource, run_export_step
    from functions.messages.models.export_io import ExportFilters, ExportJob
    from shared.audit import DynamoAuditLog
    from shared.crypto import FieldCipher
    from tests.unit.test_messages_export import DiskS3

    with moto_world(), tempfile.TemporaryDirectory() as root:
        cipher = FieldCipher(os.environ["DATA_KEY_ARN"])
        source: Any
        if through_dynamodb:
            _seed_dynamodb(n, cipher)
            source = SearchSource(DynamoMessageStore(TABLE))
        else:
            source = GeneratedMessages(n, cipher)
        store = DynamoExportStore(TABLE)
        audit = DynamoAuditLog(ENV["AUDIT_TABLE_NAME"])
        job = store.create(
            ExportJob(
                tenant="acme",
                export_id="0b1e2d3c-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
                requested_by="user:bench",
                requested_at=NOW,
                filters=ExportFilters(),
                content_included=True,
                docid_prefix="BENCH",
            )
        )
        files = S3ExportFiles(ENV["EXPORT_BUCKET_NAME"], "acme", job.export_id, DiskS3(root))  # type: ignore[arg-type]
        opener = _Opener(cipher)
        gc.collect()
        watch = _PeakMemory()
        try:
            while not job.status.finished:
                job = run_export_step(
                    "acme",
                    job.export_id,
                    store=store,
                    files=files,
                    source=source,
                    audit=audit,
                    time_left=lambda: float("inf"),
                    opener=opener,
                )
            files.close()
            growth = watch.growth_bytes()
        finally:
            watch.stop()
        if job.counts.documents != n or job.status.value != "succeeded":
            raise RuntimeError(f"the export did not write {n} documents: {job.status}, {job.counts}")
        return growth / 1e6


class _PeakMemory:
    """The peak growth of resident memory from now on: the kernel's high-water mark, reset now."""

    def __init__(self) -> None:
        self._proc = Path("/proc/self/status").exists()
        if self._proc:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
            self._base = _status_kb("VmRSS")
        else:
            tracemalloc.start()
            self._base = tracemalloc.get_traced_memory()[0]

    def growth_bytes(self) -> int:
        if self._proc:
            return max(0, _status_kb("VmHWM") - self._base) * 1024
        return int(tracemalloc.get_traced_memory()[1] - self._base)

    def stop(self) -> None:
        if not self._proc:
            tracemalloc.stop()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


class _Opener:
    def __init__(self, cipher: Any) -> None:
        self._cipher = cipher

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        text: str = self._cipher.decrypt(tenant, "message", sealed, record=message_id, field=field_name)
        return text


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else MESSAGES
    peak = export_peak_memory_mb(count)
    print(f"export of {count} messages: peak memory growth {peak:.1f} MB (target < {TARGET_MB})")
    path = record([Figure("messages.export.peak_memory_growth_mb", round(peak, 1), "MB", TARGET_MB)])
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
