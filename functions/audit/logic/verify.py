"""The audit trail checked where it lives: the linked chain in the table against the signed digests in the
bucket, with the same checks `ats-audit verify` makes on an export (shared/audit_proof.py). An entry changed in
the table with the chain recomputed after it, a chain cut back (its head rewound), or a table restored to an
earlier point each fail here: the digests were signed before, and are locked where the table cannot reach them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from shared.audit_proof import Digest, DigestFile, check_digests, diagnose_period, period_plan, period_verifies


class ChainLines(Protocol):
    def lines(self, tenant: str, shard: int, *, after_seq: int, up_to_seq: int | None = None) -> Iterator[str]: ...


@dataclass(frozen=True)
class TrailVerification:
    tenant: str
    ok: bool
    digests: int
    entries: int
    problem: str | None = None


def period_lines(chain: ChainLines, digest: Digest) -> list[bytes]:
    """The chain's stored lines a digest's period covers, shard by shard in seq order: an export's period."""
    out: list[bytes] = []
    for section in sorted(digest.shards, key=lambda s: s.shard):
        out.extend(
            line.encode("utf-8")
            for line in chain.lines(
                digest.tenant, section.shard, after_seq=section.first_seq - 1, up_to_seq=section.last_seq
            )
        )
    return out


def verify_trail(
    tenant: str,
    *,
    chain: ChainLines,
    digests: Sequence[DigestFile],
    public_key: EllipticCurvePublicKey,
    until: datetime | None = None,
) -> TrailVerification:
    """Every digest of `tenant` (ordered by period) and the chain entries each covers; the first failure."""
    problem = check_digests(digests, public_key, until=until)
    if problem is not None:
        message = f"digest {problem.name} ({problem.period}): {problem.message}"
        return TrailVerification(tenant, False, problem.index, 0, message)
    entries = 0
    for index, item in enumerate(digests):
        plan = period_plan(item.digest)
        lines = period_lines(chain, item.digest)
        if not period_verifies(plan, lines):
            found = diagnose_period(plan, lines)
            where = f"period {item.digest.period_start}..{item.digest.period_end}"
            detail = (
                f"entry shard {found.shard} seq {found.seq}: {found.message}"
                if found is not None
                else "its entries do not match the signed digest"
            )
            return TrailVerification(tenant, False, index, entries, f"{where}: {detail}")
        entries += len(lines)
    return TrailVerification(tenant, True, len(digests), entries)
