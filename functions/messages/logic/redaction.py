"""Removing a message's content: the redaction a compliance officer makes on a disclosure request, and the
mechanism it shares with the erasure that follows a `RecordPurged` (logic/erasure.py).

What goes: the sealed subject and body, and the message's search terms (their digests are recomputed from the
opened content with the blind index, under every key version the tenant holds, since the message may have been
indexed before a rotation). What stays: every fact of the message (ids, parties, channel, statuses and their
history, thread, candidate and requisition) and `content_hash`, the SHA-256 of the subject and body that the
ingest consumer computed when it sealed them, so a copy disclosed or exported earlier can still be matched.
`redacted_at` is set, and from then on the ingest consumer keeps no content for the message, whatever a provider
sends again.

The terms go first and the message after, conditionally on the version read: a crash in between leaves the
content in place, so the redaction can be made again (it recomputes the same terms); a redaction that left the
message without content but with its terms could never find them again, and a search would still match it.

A message under a legal hold is not redacted (409 naming the holds). This redaction is not a masking of a
disclosed copy: it destroys the only stored copy of the content, which is exactly what a hold suspends (evidence
kept for legal claims, GDPR Art. 17(3)(e); a party must not destroy what it holds for litigation). What the
disclosure may not show is withheld from the copy instead (the export withholds content from readers without
`messages:content:read`); once the hold is released, the redaction can be made.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from functions.messages.dal.items import at_of
from functions.messages.dal.messages import MessageStore, StaleWrite
from functions.messages.dal.terms import TermRemover
from functions.messages.models.message import MessageState
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.errors import Conflict, DependencyFailure
from shared.permissions import Permission, authorize, ensure_tenant

_WRITE_ATTEMPTS = 4
REDACT_ACTION = "messages:redact"


class ContentOpener(Protocol):
    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str: ...


class TermDigests(Protocol):
    """The blind index (functions/messages/logic/blind_index.py `BlindIndex.query`): per token of a text, its
    digests under every key version the tenant holds."""

    def query(self, tenant: str, query: str) -> list[list[str]]: ...


class HoldCheck(Protocol):
    def covering(self, state: MessageState) -> frozenset[str]: ...


@dataclass(frozen=True)
class ContentTools:
    """What removing content needs besides the message store: opening it, digesting it, deleting its terms."""

    opener: ContentOpener
    index: TermDigests
    terms: TermRemover


@dataclass(frozen=True)
class Removal:
    state: MessageState  # as stored afterwards
    content_removed: bool  # sealed content was there and is gone
    terms_removed: int
    changed: bool  # the message was written


def term_ats(state: MessageState) -> list[str]:
    """Every `at` the message's term items can have been written under: its current one, and one per event time
    (the first event time only moves earlier, so the one the terms were written with is among them)."""
    ats = [at_of(state)]
    ats.extend(f"{clock.isoformat(entry.at)}#{state.message_id}" for entry in state.history)
    return list(dict.fromkeys(ats))


def _digests(state: MessageState, subject: str, body: str, index: TermDigests) -> list[str]:
    if not subject and not body:
        return []
    # The text the ingest consumer indexed (functions/messages/logic/ingest.py `_with_content`).
    per_token = index.query(state.tenant, f"{subject}\n{body}")
    return list(dict.fromkeys(d for digests in per_token for d in digests))


def remove_content(
    state: MessageState, *, store: MessageStore, tools: ContentTools, at: datetime | None = None
) -> Removal:
    """Remove `state`'s sealed content and search terms, keep everything else and `content_hash`, and set
    `redacted_at`. A message already without content and marked is left as it is. A concurrent write (the ingest
    consumer) is met by reading the message again and starting over."""
    moment = datetime.fromisoformat(clock.isoformat(at or clock.now()))  # as stored: UTC, milliseconds
    for _ in range(_WRITE_ATTEMPTS):
        had_content = state.sealed_subject is not None or state.sealed_body is not None
        if not had_content and state.redacted_at is not None:
            return Removal(state, content_removed=False, terms_removed=0, changed=False)
        t, m = state.tenant, state.message_id
        subject = tools.opener.open(t, m, "subject", state.sealed_subject) if state.sealed_subject else ""
        body = tools.opener.open(t, m, "body", state.sealed_body) if state.sealed_body else ""
        digests = _digests(state, subject, body, tools.index)
        removed = tools.terms.delete_terms(t, m, digests, term_ats(state)) if digests else 0
        content_hash = state.content_hash
        if content_hash is None and had_content:
            content_hash = hashlib.sha256(f"{subject}\x1f{body}".encode()).hexdigest()
        cleared = replace(
            state,
            sealed_subject=None,
            sealed_body=None,
            content_hash=content_hash,
            redacted_at=state.redacted_at or moment,
        )
        try:
            stored = store.save(cleared)
        except StaleWrite:
            current = store.get(t, m)
            if current is None:  # gone meanwhile: nothing left to remove
                return Removal(state, content_removed=False, terms_removed=removed, changed=False)
            state = current
            continue
        return Removal(stored, content_removed=had_content, terms_removed=removed, changed=True)
    raise DependencyFailure(f"message {state.message_id} kept changing while its content was being removed")


def held_reason(holds: frozenset[str], what: str) -> str:
    names = ", ".join(sorted(holds)[:10]) + (" ..." if len(holds) > 10 else "")
    return f"{what} kept under legal hold(s) {names}"[:512]


def redact_message(
    actor: Actor,
    message_id: str,
    reason: str,
    *,
    store: MessageStore,
    holds: HoldCheck,
    tools: ContentTools,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> Removal:
    """Redact one of the actor's tenant's messages on a disclosure request (`messages:redact`). NotFound for a
    missing message and another tenant's alike; Conflict while a legal hold covers it. Idempotent: a redacted
    message is returned as it is.

    Audited: the permission check's entry, then an entry of the redaction made with the request's `reason` (or a
    DENIED entry naming the holds that kept it)."""
    resource = f"message/{message_id}:redact"
    authorize(
        actor, Permission.REDACT_MESSAGES, resource=resource, request_id=request_id, audit=audit, source_ip=source_ip
    )
    found = store.get(actor.tenant, message_id)
    ensure_tenant(actor, found.tenant if found else None, "message")
    assert found is not None
    held = holds.covering(found)
    if held:
        audit.append(
            AuditEntry(
                tenant=actor.tenant,
                actor=actor.label,
                action=REDACT_ACTION,
                resource=resource,
                outcome=Outcome.DENIED,
                request_id=request_id,
                reason=held_reason(held, "the message is"),
                source_ip=source_ip,
            )
        )
        raise Conflict(f"message {message_id} is under legal hold ({', '.join(sorted(held))}): release it first")
    removal = remove_content(found, store=store, tools=tools)
    if removal.changed:
        audit.append(
            AuditEntry(
                tenant=actor.tenant,
                actor=actor.label,
                action=REDACT_ACTION,
                resource=f"message/{message_id}:redacted",
                outcome=Outcome.ALLOWED,
                request_id=request_id,
                reason=reason[:512],
                source_ip=source_ip,
            )
        )
    return removal
