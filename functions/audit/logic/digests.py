"""Signed digests of the audit chain: one per tenant per period (hourly), written to the Object Lock bucket.

A digest (shared/audit_proof.py `Digest`) holds, for each shard, the run of entries linked since the previous
digest (first and last seq, the hash before the run and after it), the Merkle root over them, the count and the
time range, the SHA-256 of the previous digest file, and an ECDSA signature by the audit signing key (KMS). An
empty period gets a digest too, so a missing one shows. A period's digest holds what was linked when it was made
(the job runs a few minutes after the hour); a missed run is caught up period by period, the first catching up
every entry linked since.

Nothing is ever replaced: the digest object is written only if absent (`If-None-Match: *`), then its state item
is inserted. A run that stopped between the two finds the object already there and records it as it stands.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Protocol

from functions.audit.dal.chain import Head
from functions.audit.dal.digests import DigestState
from shared.audit import INBOX_SHARDS
from shared.audit_proof import (
    GENESIS,
    DigestSigner,
    LinkedEntry,
    build_digest,
    digest_bytes,
    digest_object_key,
    digest_sha256,
    parse_digest,
    parse_export_line,
)
from shared.observability import logger

PERIOD = timedelta(hours=1)
MAX_CATCH_UP_PERIODS = 24 * 7  # a job that was off for over a week catches up over several runs


class ChainReader(Protocol):
    def head(self, tenant: str, shard: int) -> Head: ...

    def lines(self, tenant: str, shard: int, *, after_seq: int, up_to_seq: int | None = None) -> Iterator[str]: ...


class DigestStore(Protocol):
    def last(self, tenant: str) -> DigestState | None: ...

    def put_object(self, key: str, body: bytes) -> bytes:
        """Write `body` at `key` if absent; the bytes stored there (the existing ones if it was present)."""
        ...

    def record(self, tenant: str, period_start: datetime, state: DigestState) -> None: ...


def floor_period(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _linked_since(chain: ChainReader, tenant: str, ends: dict[int, tuple[int, str]]) -> list[LinkedEntry]:
    """Every entry linked after what the digests so far cover, up to each chain's head now."""
    out: list[LinkedEntry] = []
    for shard in range(INBOX_SHARDS):
        head = chain.head(tenant, shard)
        after, end_hash = ends.get(shard, (0, GENESIS.hex()))
        prev = bytes.fromhex(end_hash)
        if head.seq <= after:
            continue
        for line in chain.lines(tenant, shard, after_seq=after, up_to_seq=head.seq):
            exported = parse_export_line(line.encode("utf-8"))
            out.append(LinkedEntry(exported.entry, prev, exported.stored_hash))
            prev = exported.stored_hash
    return out


def write_digests(
    tenant: str, now: datetime, *, chain: ChainReader, store: DigestStore, signer: DigestSigner
) -> list[str]:
    """Write the tenant's digests for every whole period up to `now` not yet digested; their object keys."""
    end = floor_period(now)
    last = store.last(tenant)
    start = last.period_end if last else end - PERIOD
    written: list[str] = []
    previous = last
    for _ in range(MAX_CATCH_UP_PERIODS):
        if start >= end:
            break
        ends = previous.ends if previous else {}
        entries = _linked_since(chain, tenant, ends)
        digest = build_digest(
            tenant=tenant,
            period_start=start,
            period_end=start + PERIOD,
            entries=entries,
            previous=previous.body if previous else None,
            signer=signer,
        )
        key = digest_object_key(tenant, digest.period_start)
        stored = store.put_object(key, digest_bytes(digest))
        written_digest = parse_digest(stored)  # ours, or the one an interrupted run wrote first
        ends = {**ends, **{s.shard: (s.last_seq, s.end_hash) for s in written_digest.shards}}
        state = DigestState(period_end=start + PERIOD, key=key, body=stored, ends=ends)
        store.record(tenant, start, state)
        logger.info(
            "audit digest written",
            extra={"tenant": tenant, "key": key, "entries": digest.count, "sha256": digest_sha256(stored)},
        )
        written.append(key)
        previous, start = state, start + PERIOD
    return written
