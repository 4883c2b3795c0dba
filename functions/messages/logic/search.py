"""Finding messages: by candidate, requisition, status, channel, date range and text, a page at a time, and a
message or a thread by id. Every read and search is authorised and audited (shared.permissions.authorize
writes the entry); reading content needs `messages:content:read` on top of `messages:read`, and is audited
as its own entry.

Each metadata filter is served by an index (functions/messages/dal/items.py): the most selective one named
becomes the key condition, the others a filter on that index's items. Text is searched through the blind
index: the first query token's term items are paged by time, and each further token is a point read of the
same message's term item (`<digest>`, `<at>`), so a search never reads a term's whole posting list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from functions.messages.dal.items import index_value
from functions.messages.dal.messages import IndexQuery, MessageStore, Page
from functions.messages.models.message import Channel, MessageState, Status
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, NotFound
from shared.permissions import Permission, authorize, ensure_tenant, is_allowed

MAX_LIMIT = 100


@dataclass(frozen=True)
class SearchRequest:
    candidate_id: str | None = None
    requisition_id: str | None = None
    status: Status | None = None
    channel: Channel | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class Content:
    subject: str | None
    body: str | None


@dataclass(frozen=True)
class Found:
    message: MessageState
    content: Content | None  # None: no content permission, or none kept (metadata policy, redacted)


@dataclass(frozen=True)
class SearchResult:
    found: list[Found]
    cursor: str | None
    items_read: int
    content_allowed: bool


class ContentOpener(Protocol):
    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str: ...


class TextIndex(Protocol):
    """The blind index: per query token, its digests under every key version held (functions/messages/logic/
    blind_index.py)."""

    def query(self, tenant: str, query: str) -> list[list[str]]: ...


class TermStore(Protocol):
    def term_page(
        self,
        tenant: str,
        digests: Sequence[str],
        *,
        since: str | None,
        until: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[tuple[str, str]], str | None, int]: ...

    def has_terms(self, tenant: str, wanted: Sequence[tuple[Sequence[str], str]]) -> set[str]: ...


def _content(found: MessageState, opener: ContentOpener | None) -> Content | None:
    if opener is None or (found.sealed_subject is None and found.sealed_body is None):
        return None
    t, m = found.tenant, found.message_id
    return Content(
        subject=opener.open(t, m, "subject", found.sealed_subject) if found.sealed_subject else None,
        body=opener.open(t, m, "body", found.sealed_body) if found.sealed_body else None,
    )


def _index_query(tenant: str, request: SearchRequest) -> tuple[IndexQuery, dict[str, str]]:
    """The key condition (most selective filter first) and the remaining filters."""
    since = clock.isoformat(request.since) if request.since else None
    until = clock.isoformat(request.until) if request.until else None
    named = [
        ("ByCandidate", "candidate_id", request.candidate_id),
        ("ByRequisition", "requisition_id", request.requisition_id),
        ("ByStatus", "status", request.status.value if request.status else None),
        ("ByChannel", "channel", request.channel.value if request.channel else None),
    ]
    given = [(index, attr, value) for index, attr, value in named if value]
    if not given:
        return IndexQuery("ByTime", tenant, since, until), {}
    index, _, value = given[0]
    return IndexQuery(index, index_value(tenant, value), since, until), {attr: v for _, attr, v in given[1:]}


def _check(request: SearchRequest) -> None:
    if not 1 <= request.limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    if request.since and request.until and request.since > request.until:
        raise BadRequest("since must not be after until")
    if request.text is not None and not request.text.strip():
        raise BadRequest("q must not be blank")


def search(
    actor: Actor,
    request: SearchRequest,
    *,
    store: MessageStore,
    audit: AuditLog,
    request_id: str,
    opener: ContentOpener | None = None,
    text_index: TextIndex | None = None,
    terms: TermStore | None = None,
    source_ip: str | None = None,
) -> SearchResult:
    """One page of the actor's tenant's messages matching every filter given, newest first."""
    _check(request)
    authorize(
        actor,
        Permission.READ_MESSAGES,
        resource="/v1/messages",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    content_allowed = _content_allowed(actor, audit, request_id, source_ip, "/v1/messages") and opener is not None
    tenant = actor.tenant
    if request.text:
        if text_index is None or terms is None:
            raise BadRequest("text search is not available here")
        page = _text_page(tenant, request, store, text_index, terms)
    else:
        query, filters = _index_query(tenant, request)
        page = store.query(tenant, query, limit=request.limit, cursor=request.cursor, filters=filters)
    found = [Found(m, _content(m, opener) if content_allowed else None) for m in page.messages if m.tenant == tenant]
    return SearchResult(found, page.cursor, page.items_read, content_allowed)


def _content_allowed(actor: Actor, audit: AuditLog, request_id: str, source_ip: str | None, resource: str) -> bool:
    """Whether the actor may read content; the decision is audited only for those who may (a metadata reader's
    search is not a refused content read)."""
    if not is_allowed(actor, Permission.READ_MESSAGE_CONTENT):
        return False
    authorize(
        actor,
        Permission.READ_MESSAGE_CONTENT,
        resource=resource,
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    return True


def _text_page(tenant: str, request: SearchRequest, store: MessageStore, index: TextIndex, terms: TermStore) -> Page:
    tokens = index.query(tenant, request.text or "")
    if not tokens:
        raise BadRequest("q has no searchable word")
    since = clock.isoformat(request.since) if request.since else None
    until = clock.isoformat(request.until) if request.until else None
    first, rest = tokens[0], tokens[1:]
    hits, cursor, read = terms.term_page(
        tenant, first, since=since, until=until, limit=request.limit, cursor=request.cursor
    )
    ids = [message_id for message_id, _ in hits]
    if rest and hits:
        keep = set(ids)
        for digests in rest:
            keep &= terms.has_terms(tenant, [(digests, at) for _, at in hits])
            read += len(hits)
        ids = [i for i in ids if i in keep]
    loaded = store.load([(tenant, i) for i in ids])
    messages = [loaded[(tenant, i)] for i in ids if (tenant, i) in loaded]
    read += len(ids)
    messages = [m for m in messages if _matches(m, request)]
    return Page(messages=messages, cursor=cursor, items_read=read)


def _matches(message: MessageState, request: SearchRequest) -> bool:
    return (
        (request.candidate_id is None or message.candidate_id == request.candidate_id)
        and (request.requisition_id is None or message.requisition_id == request.requisition_id)
        and (request.status is None or message.status is request.status)
        and (request.channel is None or message.channel is request.channel)
    )


def get_message(
    actor: Actor,
    message_id: str,
    *,
    store: MessageStore,
    audit: AuditLog,
    request_id: str,
    opener: ContentOpener | None = None,
    source_ip: str | None = None,
) -> Found:
    """One message of the actor's tenant; another tenant's and a missing one are the same 404."""
    resource = f"/v1/messages/{message_id}"
    authorize(
        actor, Permission.READ_MESSAGES, resource=resource, request_id=request_id, audit=audit, source_ip=source_ip
    )
    found = store.get(actor.tenant, message_id)
    ensure_tenant(actor, found.tenant if found else None, "message")
    assert found is not None
    allowed = _content_allowed(actor, audit, request_id, source_ip, resource) and opener is not None
    return Found(found, _content(found, opener) if allowed else None)


@dataclass(frozen=True)
class Thread:
    thread_id: str
    found: list[Found]
    etag: str
    cursor: str | None


def thread_etag(messages: Sequence[MessageState], content: bool) -> str:
    """A strong validator of what the thread view returns: its messages, their versions, and whether content was
    included (two readers with different permissions never share a cached copy)."""
    digest = hashlib.sha256(b"content" if content else b"metadata")
    for m in messages:
        digest.update(f"\x1f{m.message_id}:{m.version}".encode())
    return f'"{digest.hexdigest()[:32]}"'


def get_thread(
    actor: Actor,
    thread_id: str,
    *,
    store: MessageStore,
    audit: AuditLog,
    request_id: str,
    opener: ContentOpener | None = None,
    cursor: str | None = None,
    limit: int = MAX_LIMIT,
    source_ip: str | None = None,
) -> Thread:
    """A thread's messages, oldest first, with an ETag for conditional requests."""
    resource = f"/v1/threads/{thread_id}"
    authorize(
        actor, Permission.READ_MESSAGES, resource=resource, request_id=request_id, audit=audit, source_ip=source_ip
    )
    query = IndexQuery("ByThread", index_value(actor.tenant, thread_id), newest_first=False)
    page = store.query(actor.tenant, query, limit=limit, cursor=cursor, filters={})
    if not page.messages and cursor is None:
        raise NotFound("thread not found")
    allowed = _content_allowed(actor, audit, request_id, source_ip, resource) and opener is not None
    found = [Found(m, _content(m, opener) if allowed else None) for m in page.messages]
    return Thread(thread_id, found, thread_etag(page.messages, allowed), page.cursor)
