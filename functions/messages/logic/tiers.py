"""The storage tiers of messages (issue 12, section 5): a message moves from DynamoDB to the archive bucket's warm
and cold tiers by the tenant's policy, stays findable by every metadata search there, and is deleted at the end
of the tenant's period unless a legal hold covers it.

Where a message is (`MessageState.tier`, by the age of its first event against the tenant's `MessagePolicy`):

- hot (`tier` absent): the whole item in DynamoDB, as ingest writes it;
- warm (older than `warm_after_days`): the DynamoDB item becomes a stub without content (same keys, index
  attributes and history, so every metadata search still finds it and its search terms stay), and its content goes
  to the archive bucket as the whole item (sealed as it is: nothing is opened), in Standard-IA;
- cold (older than `cold_after_days`): the object is copied to Glacier Instant Retrieval and the stub says so;
- deleted (older than `delete_after_days`, no active hold covering it, decided from the hold items as everywhere
  else): its search terms (their digests computed again from the archived content, as a redaction does), every
  version of its archive object and its stub go; the deletion is audited (job `messages-tiering`) before anything
  is destroyed. A held message is skipped and counted, and moved to the cold tier if it was not there yet.

The layout of an archived message (stub, object, `merged`, `ArchivedMessages` which reads one back whole) is
functions/messages/dal/archive.py's. A message without content (a `metadata` policy, a redacted one) changes its
`tier` and gets no object. An event arriving late for an archived message is applied to the stub by the ingest
consumer as to any message; `merged` folds the stub with the archived copy when the message is read back whole,
when it moves cold, and when it is deleted.

The daily workflow (functions/messages/handlers/tiering.py) runs, per tenant with a stored policy, three phases
oldest first on the ByTime index, each over its own age range, so no message is read by two phases:

    delete  at <  now - delete_after_days                       any tier
    cold    now - delete_after_days <= at < now - cold_after    hot or warm
    warm    now - cold_after_days   <= at < now - warm_after    hot

A page handles at most `PAGE_SIZE` messages, and reads at most `READ_BUDGET` index items when they are filtered
out (messages already in their tier). Every step is safe to repeat: what a page moved has left its phase's filter
and what it deleted is gone, so a task retried, or the day run again, changes nothing more. Each message's write
is conditional on the version read (consistently, after the index page), so a concurrent ingest write is never
lost: that message is counted `stale` and judged again the next day. A policy that grows a period never moves a
message back (a warm message stays warm); one that shortens it applies at the next run.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field

from functions.messages.dal.archive import (
    STORAGE_CLASS,
    DueRange,
    MessageArchive,
    TierStore,
    archive_key_for,
    for_archive,
    has_content,
    merged,
    stub_of,
)
from functions.messages.dal.items import at_of
from functions.messages.dal.messages import MessageStore, StaleWrite
from functions.messages.models.message import MessageState
from functions.messages.models.policy import MAX_TIER_DAYS, MIN_TIER_DAYS, MessagePolicy, Tier
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.keys import tenant_problem
from shared.models import Model
from shared.observability import logger

if TYPE_CHECKING:
    from functions.messages.dal.holds import HoldReader
    from functions.messages.logic.holds import ActiveHolds
    from functions.messages.logic.redaction import ContentTools

JOB = "messages-tiering"
DELETE_ACTION = "messages:delete"
PAGE_SIZE = 100  # messages handled per page (the Query's Limit)
READ_BUDGET = 2000  # index items a page reads at most while every one is filtered out (already in its tier)
# What a page counts: `warm`, `cold` (messages moved there), `deleted`, `held_skipped`, `stale` (changed meanwhile,
# judged again tomorrow), `missing` (a warm stub whose archive object is gone: logged as an error).


# --- ports ------------------------------------------------------------------------------------------------------------


class PolicyReader(Protocol):
    def get(self, tenant: str) -> MessagePolicy: ...

    def tenants(self) -> list[str]: ...


@dataclass(frozen=True)
class TieringPorts:
    messages: MessageStore
    tiers: TierStore
    archive: MessageArchive
    policies: PolicyReader
    holds: HoldReader
    tools: ContentTools  # opening content and deleting its search terms (only a deletion of content uses it)
    audit: AuditLog


# --- the workflow's state ---------------------------------------------------------------------------------------------


class Phase(StrEnum):
    DELETE = "delete"
    COLD = "cold"
    WARM = "warm"


PHASES: tuple[Phase, ...] = tuple(Phase)


class TieringState(Model):
    """What flows from one workflow step to the next for one tenant (JSON, well under Step Functions' 256 KB)."""

    tenant: str
    run_id: str  # the day, `YYYY-MM-DD`
    now: str  # the run's moment (clock.isoformat), fixed at start: every page judges ages against it
    execution: str
    phase: Phase = Phase.DELETE
    cursor: dict[str, Any] | None = None  # where the phase's next read of ByTime starts (LastEvaluatedKey)
    page: int = 0
    done: bool = False
    # The tenant's periods, read on its first page and kept for the run.
    warm_after_days: int | None = None
    cold_after_days: int | None = None
    delete_after_days: int | None = None
    policy_version: int | None = None
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)  # per phase, this execution's


@dataclass(frozen=True)
class PageOutcome:
    state: TieringState  # the state of the next page
    counts: dict[str, int]  # what this page did


def start_tiering(*, policies: PolicyReader, execution: str | None = None) -> list[TieringState]:
    """One state per tenant with a stored policy, all judged against the same moment (clock.now() here)."""
    now = clock.now()
    moment = clock.isoformat(now)
    execution = execution or str(uuid.uuid4())
    states = []
    for tenant in policies.tenants():
        problem = tenant_problem(tenant)
        if problem:
            logger.error("registry names a tenant that cannot be one", extra={"problem": problem})
            continue
        states.append(TieringState(tenant=tenant, run_id=moment[:10], now=moment, execution=execution))
    return states


def _ranges(state: TieringState) -> dict[Phase, DueRange]:
    assert state.warm_after_days and state.cold_after_days and state.delete_after_days
    now = datetime.fromisoformat(state.now.replace("Z", "+00:00"))

    def before(days: int) -> str:
        return clock.isoformat(now - timedelta(days=days))

    deleted, cold, warm = before(state.delete_after_days), before(state.cold_after_days), before(state.warm_after_days)
    return {
        Phase.DELETE: DueRange(since=None, before=deleted),
        Phase.COLD: DueRange(since=deleted, before=cold, tiers=frozenset({None, Tier.WARM.value})),
        Phase.WARM: DueRange(since=cold, before=warm, tiers=frozenset({None})),
    }


def _in_range(state: MessageState, due: DueRange) -> bool:
    at = at_of(state)
    return (due.since is None or at >= due.since) and at < due.before and (due.tiers is None or state.tier in due.tiers)


def _with_policy(state: TieringState, policy: MessagePolicy) -> TieringState | None:
    warm, cold, delete = policy.warm_after_days, policy.cold_after_days, policy.delete_after_days
    if not MIN_TIER_DAYS <= warm < cold < delete <= MAX_TIER_DAYS:
        return None
    return state.model_copy(
        update={
            "warm_after_days": warm,
            "cold_after_days": cold,
            "delete_after_days": delete,
            "policy_version": policy.version,
        }
    )


def _accumulate(counts: dict[str, dict[str, int]], phase: Phase, page: Counter[str]) -> dict[str, dict[str, int]]:
    merged_counts = {name: dict(values) for name, values in counts.items()}
    target = merged_counts.setdefault(phase.value, {})
    for name, value in page.items():
        target[name] = target.get(name, 0) + value
    return merged_counts


def tiering_page(
    state: TieringState, *, ports: TieringPorts, page_size: int = PAGE_SIZE, read_budget: int = READ_BUDGET
) -> PageOutcome:
    """Do at most one page of the current phase for `state.tenant`; the state of the next page and this page's
    counts. Raises on a failed dependency (S3, DynamoDB, KMS): the workflow retries the page with the same input,
    which is safe (see the module docstring)."""
    if state.done:
        return PageOutcome(state, {})
    if state.warm_after_days is None:
        with_policy = _with_policy(state, ports.policies.get(state.tenant))
        if with_policy is None:
            logger.error("stored message policy breaks the tier rule: tenant skipped", extra={"tenant": state.tenant})
            return PageOutcome(state.model_copy(update={"done": True, "cursor": None}), {})
        state = with_policy
    due_range = _ranges(state)[state.phase]
    cursor, read = state.cursor, 0
    while True:
        due = ports.tiers.due(state.tenant, due_range, cursor=cursor, limit=page_size)
        read += due.items_read
        cursor = due.cursor
        if due.messages or cursor is None or read >= read_budget:
            break
    counts: Counter[str] = Counter()
    if due.messages:
        from functions.messages.logic.holds import ActiveHolds

        holds = ActiveHolds(ports.holds)  # the tenant's active holds, read once for the page
        # Consistent reads of what the index listed: the index may lag, and what is archived is the latest.
        fresh = ports.messages.load([(state.tenant, m.message_id) for m in due.messages])
        for listed in due.messages:
            current = fresh.get((state.tenant, listed.message_id))
            if current is None or current.tenant != state.tenant or not _in_range(current, due_range):
                continue
            if state.phase is Phase.WARM:
                _to_warm(current, ports, counts)
            elif state.phase is Phase.COLD:
                _to_cold(current, ports, counts)
            else:
                _delete(current, state, ports, holds, counts)
    page = state.page + 1
    after = state.model_copy(
        update={"cursor": cursor, "page": page, "counts": _accumulate(state.counts, state.phase, counts)}
    )
    if cursor is None:
        position = PHASES.index(state.phase)
        if position + 1 == len(PHASES):
            after = after.model_copy(update={"done": True})
        else:
            after = after.model_copy(update={"phase": PHASES[position + 1]})
    if counts:
        summary = ", ".join(f"{name}={value}" for name, value in sorted(counts.items()))
        ports.audit.append(
            AuditEntry(
                tenant=state.tenant,
                actor=Actor.system(JOB, state.tenant).label,
                action=f"messages.tiering.{state.phase.value}",
                resource=f"messages-tiering/{state.run_id}/{state.execution}/{state.phase.value}/{page}"[:512],
                outcome=Outcome.ALLOWED,
                request_id=state.run_id,
                reason=f"policy v{state.policy_version}: {summary}"[:512],
            )
        )
    return PageOutcome(after, dict(counts))


# --- the transitions ------------------------------------------------------------------------------------------------


def _save_stub(read: MessageState, stub: MessageState, ports: TieringPorts, counts: Counter[str], counter: str) -> None:
    """Replace the item read by `stub`, conditionally on its version. When a concurrent write won and the message
    was hot, the object just written belongs to no stub: it is removed (tomorrow's run archives the message again)."""
    try:
        ports.messages.save(stub)
    except StaleWrite:
        counts["stale"] += 1
        if read.tier is None and stub.archive_key:
            now = ports.messages.get(read.tenant, read.message_id)
            if now is None or now.archive_key != stub.archive_key:
                ports.archive.delete(stub.archive_key)
        return
    counts[counter] += 1


def _to_warm(state: MessageState, ports: TieringPorts, counts: Counter[str]) -> None:
    key = archive_key_for(state) if has_content(state) else None
    if key:
        ports.archive.put(key, for_archive(state), STORAGE_CLASS[Tier.WARM])
    _save_stub(state, stub_of(state, Tier.WARM, key), ports, counts, "warm")


def _to_cold(state: MessageState, ports: TieringPorts, counts: Counter[str]) -> None:
    if state.tier == Tier.COLD.value:
        return
    cold = STORAGE_CLASS[Tier.COLD]
    if state.archive_key and not has_content(state):
        # Warm, and nothing added since: the object is the whole message, copied to the cold class.
        stored = ports.archive.storage_class(state.archive_key)
        if stored is None:
            logger.error("warm message has no archive object", extra={"message_id": state.message_id})
            counts["missing"] += 1
            return
        if stored != cold:
            ports.archive.change_class(state.archive_key, cold)
        _save_stub(state, replace(state, tier=Tier.COLD.value), ports, counts, "cold")
        return
    if not has_content(state):  # nothing to move: the stub is the whole message
        _save_stub(state, stub_of(state, Tier.COLD, None), ports, counts, "cold")
        return
    # Hot with content (straight to cold), or a stub that content arrived on since: written whole again.
    key = state.archive_key or archive_key_for(state)
    whole = merged(state, ports.archive.read(key)) if state.archive_key else state
    ports.archive.put(key, for_archive(whole), cold)
    _save_stub(state, stub_of(whole, Tier.COLD, key), ports, counts, "cold")


def _delete(
    state: MessageState, run: TieringState, ports: TieringPorts, holds: ActiveHolds, counts: Counter[str]
) -> None:
    from functions.messages.logic.holds import ActiveHolds

    # Asked again of the hold items right before anything is destroyed: a hold placed since the page began counts.
    if holds.covering(state) or ActiveHolds(ports.holds).covering(state):
        counts["held_skipped"] += 1
        _to_cold(state, ports, counts)  # kept, and as cheaply as it can be
        return
    t, m = state.tenant, state.message_id
    # Audited first: a deletion that fails half-way is retried and completed, and never goes untraced.
    ports.audit.append(
        AuditEntry(
            tenant=t,
            actor=Actor.system(JOB, t).label,
            action=DELETE_ACTION,
            resource=f"message/{m}:deleted",
            outcome=Outcome.ALLOWED,
            request_id=run.run_id,
            reason=(
                f"end of the tenant's period: first event {clock.isoformat(state.first_at)[:10]}, "
                f"delete_after_days={run.delete_after_days} (policy v{run.policy_version})"
            ),
        )
    )
    archived = ports.archive.read(state.archive_key) if state.archive_key else None
    if state.archive_key and archived is None:
        logger.warning("archived message had no archive object left", extra={"message_id": m})
    _delete_terms([state, *([archived] if archived else [])], ports.tools)
    for key in dict.fromkeys(k for k in (state.archive_key, archive_key_for(state)) if k):
        # The key it would have had too: an object written by an attempt that never got to its stub goes as well.
        ports.archive.delete(key)
    counts["deleted" if ports.tiers.delete_stub(t, m, state.version) else "stale"] += 1


def _delete_terms(copies: list[MessageState], tools: ContentTools) -> int:
    """Delete the search terms of every sealed content among `copies` (the stub's own and the archived one): their
    digests computed again from the opened content, under every key version held, at every `at` they can have
    been written under (the same as functions/messages/logic/redaction.py `remove_content`)."""
    from functions.messages.logic.redaction import term_ats

    digests: list[str] = []
    ats: list[str] = []
    for copy in copies:
        if not has_content(copy):
            continue
        t, m = copy.tenant, copy.message_id
        subject = tools.opener.open(t, m, "subject", copy.sealed_subject) if copy.sealed_subject else ""
        body = tools.opener.open(t, m, "body", copy.sealed_body) if copy.sealed_body else ""
        # The text the ingest consumer indexed (functions/messages/logic/ingest.py `_with_content`).
        digests.extend(d for per_token in tools.index.query(t, f"{subject}\n{body}") for d in per_token)
        ats.extend(term_ats(copy))
    if not digests:
        return 0
    head = copies[0]
    unique_digests, unique_ats = list(dict.fromkeys(digests)), list(dict.fromkeys(ats))
    return tools.terms.delete_terms(head.tenant, head.message_id, unique_digests, unique_ats)
