"""The single writer of the audit chain: it links what requests inserted into their tenant's chains.

Requests only insert inbox items (shared/audit.py); the table's stream hands every change to the linker. An
inserted inbox item's entries are linked, in order, after the head of the chain of the item's (tenant, shard):
each gets `shard` and the next `seq`, and its chain hash `SHA-256(previous hash || canonical entry)`
(shared/audit_proof.py). Anything else the stream reports is either the linker's own inserts (ignored) or a
change that is not an insert (an item modified or removed): nothing in the system does that, so each is counted
and logged as tampering, and alarmed (infra/constructs/audit.py).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from functions.audit.dal.chain import MAX_ENTRIES_PER_LINK, AlreadyLinked, Head, HeadMoved
from shared.audit import INBOX, entries_of_item
from shared.audit_proof import LinkedEntry, link
from shared.observability import logger

_ATTEMPTS = 5  # a lost race on a head is re-read and retried; more than this and the batch is retried by Lambda
CHAINS_AT_ONCE = 8  # chains linked side by side in one invocation (shared.audit.INBOX_SHARDS per tenant)


class ChainStore(Protocol):
    def head(self, tenant: str, shard: int) -> Head: ...

    def link(self, tenant: str, shard: int, source: str, linked: Sequence[LinkedEntry]) -> None: ...

    def register(self, tenant: str) -> None: ...


@dataclass(frozen=True)
class StreamChange:
    """One stream record: what happened (INSERT, MODIFY, REMOVE) to which key, with the new image of an insert."""

    event: str
    pk: str
    sk: str
    new_image: dict[str, Any] | None = None


@dataclass
class LinkReport:
    linked_entries: int = 0
    linked_items: int = 0
    already_linked: int = 0
    changes_not_inserts: list[tuple[str, str, str]] = field(default_factory=list)


def inbox_ref(pk: str) -> tuple[str, int] | None:
    """(tenant, shard) of an inbox item's key `T#<tenant>#AUDITIN#<shard>`, None for any other key."""
    parts = pk.split("#")
    if len(parts) == 4 and parts[0] == "T" and parts[2] == INBOX and parts[3].isdigit():
        return parts[1], int(parts[3])
    return None


def apply_changes(
    changes: Iterable[StreamChange],
    store: ChainStore,
    *,
    concurrency: int = CHAINS_AT_ONCE,
    heads: MutableMapping[tuple[str, int], Head] | None = None,
) -> LinkReport:
    """Link every inserted inbox item (in stream order per chain) and report every change that is not an
    insert. Raises when a chain cannot be linked (the batch is then retried: linking is idempotent).

    Chains are independent (each its own head, its own partition), so the chains a batch touches are linked side
    by side, up to `concurrency` at once, each in its stream order: what sharding a busy tenant's entries over
    several chains buys one linker invocation, where one chain's links must follow each other.

    `heads` remembers each chain's head from one batch to the next (the function's warm environment), so a chain
    is read only when it is new to this environment or its remembered head proved wrong: every link checks the
    head it follows (`ChainStore.link` raises HeadMoved), the head is then read and the link tried again."""
    heads = {} if heads is None else heads
    report = LinkReport()
    chains: dict[tuple[str, int], list[tuple[str, list[dict[str, Any]]]]] = {}
    for change in changes:
        if change.event != "INSERT":
            report.changes_not_inserts.append((change.event, change.pk, change.sk))
            continue
        ref = inbox_ref(change.pk)
        if ref is None or change.new_image is None:
            continue  # the linker's own inserts: chain entries, markers, the tenant list
        chains.setdefault(ref, []).append((change.sk, entries_of_item(change.new_image)))
    for event, pk, sk in report.changes_not_inserts:
        logger.error("an audit item was changed or removed", extra={"event": event, "pk": pk, "sk": sk})
    if len(chains) <= 1 or concurrency <= 1:
        for ref, items in chains.items():
            _link_chain(ref, items, store, heads, report)
        return report
    from concurrent.futures import ThreadPoolExecutor  # on first use: a batch of one chain never needs it

    with ThreadPoolExecutor(max_workers=min(len(chains), concurrency), thread_name_prefix="audit-link") as pool:
        futures = [pool.submit(_link_chain, ref, items, store, heads, LinkReport()) for ref, items in chains.items()]
    failure: BaseException | None = None
    for future in futures:
        error = future.exception()
        if error is not None:
            failure = failure or error
            continue
        done = future.result()
        report.linked_entries += done.linked_entries
        report.linked_items += done.linked_items
        report.already_linked += done.already_linked
    if failure is not None:
        raise failure  # the other chains' links stand: the retry finds them linked and skips them
    return report


def _link_chain(
    ref: tuple[str, int],
    items: list[tuple[str, list[dict[str, Any]]]],
    store: ChainStore,
    heads: MutableMapping[tuple[str, int], Head],
    report: LinkReport,
) -> LinkReport:
    for source, entries in items:
        _link_item(ref, source, entries, store, heads, report)
    return report


def _link_item(
    ref: tuple[str, int],
    source: str,
    entries: list[dict[str, Any]],
    store: ChainStore,
    heads: MutableMapping[tuple[str, int], Head],
    report: LinkReport,
) -> None:
    tenant, shard = ref
    if not entries or len(entries) > MAX_ENTRIES_PER_LINK:
        raise ValueError(f"inbox item {source} of {tenant} holds {len(entries)} entries")
    for _attempt in range(_ATTEMPTS):
        head = heads.get(ref) or store.head(tenant, shard)
        fields = [
            {**entry, "tenant": tenant, "shard": shard, "seq": head.seq + 1 + offset}
            for offset, entry in enumerate(entries)
        ]
        linked = link(fields, head.hash)
        try:
            store.link(tenant, shard, source, linked)
        except AlreadyLinked:
            report.already_linked += 1
            heads.pop(ref, None)  # a redelivery: the head may have moved past what we cached
            return
        except HeadMoved:
            heads.pop(ref, None)
            continue
        if head.seq == 0:
            store.register(tenant)
        heads[ref] = Head(linked[-1].entry["seq"], linked[-1].hash)
        report.linked_entries += len(linked)
        report.linked_items += 1
        return
    raise HeadMoved(f"{tenant}/{shard}: the head kept moving")
