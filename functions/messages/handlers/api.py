"""The messages API, the reading side (recording is functions/messages/handlers/record_api.py).

- GET /v1/messages: search by candidate, requisition, status, channel, date range and text, a page at a time.
- GET /v1/messages/{message_id}: one message with its status history (content for `messages:content:read`); an
  archived one (warm or cold tier) is read back whole from the archive bucket.
- GET /v1/threads/{thread_id}: a thread, oldest first, with an ETag (If-None-Match answers 304).
- GET, PUT /v1/message-policy: the tenant keeps metadata only, or content too.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.dal.messages import DynamoMessageStore
from functions.messages.handlers import _params as params
from functions.messages.logic.search import Found, SearchRequest, get_message, get_thread, search
from functions.messages.models.api_io import (
    MessageAttemptOutput,
    MessageContentOutput,
    MessageOutput,
    MessagePage,
    MessagePartyOutput,
    MessagePolicyOutput,
    MessagePolicyUpdate,
    ThreadOutput,
)
from functions.messages.models.message import Channel, Status
from functions.messages.models.policy import MessagePolicy, Tier
from shared.audit import DynamoAuditLog
from shared.errors import BadRequest
from shared.http import SECURED, build_resolver, error_responses, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class MessagesApiSettings(BaseSettings):
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)


app = build_resolver()
_TAGS = ["messages"]


class _Opener:
    """Opens sealed content on a reader's first content read (the KMS client is created then)."""

    def __init__(self, key_arn: str) -> None:
        self._key_arn = key_arn

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        from shared.crypto import FieldCipher

        return FieldCipher(self._key_arn).decrypt(tenant, "message", sealed, record=message_id, field=field_name)


def _output(found: Found) -> MessageOutput:
    m = found.message
    return MessageOutput(
        message_id=m.message_id,
        channel=m.channel,
        direction=m.direction,
        provider=m.provider,
        provider_message_id=m.message_key,
        status=m.status,
        first_at=m.first_at,
        last_at=m.last_at,
        candidate_id=m.candidate_id,
        requisition_id=m.requisition_id,
        thread_id=m.thread_id,
        rfc_message_id=m.rfc_message_id,
        in_reply_to=m.in_reply_to,
        sender=MessagePartyOutput(address=m.sender.address, name=m.sender.name) if m.sender else None,
        recipients=[MessagePartyOutput(address=p.address, name=p.name) for p in m.recipients],
        attempts=m.attempts,
        history=[
            MessageAttemptOutput(
                status=e.status,
                at=e.at,
                provider=e.provider,
                provider_event=e.provider_event,
                detail=e.detail,
                attempt=e.attempt,
                permanent=e.permanent,
            )
            for e in m.history
        ],
        content=MessageContentOutput(subject=found.content.subject, body=found.content.body) if found.content else None,
        # A stub (an archived message in a search) has its content in the archive: `content_hash` says it had some.
        content_kept=m.sealed_subject is not None
        or m.sealed_body is not None
        or (m.tier is not None and m.content_hash is not None and m.redacted_at is None),
        redacted_at=m.redacted_at,
        on_hold=bool(m.holds),
        tier=Tier(m.tier) if m.tier else Tier.HOT,
    )


def _policy_output(policy: MessagePolicy) -> MessagePolicyOutput:
    return MessagePolicyOutput(
        content=policy.content,
        warm_after_days=policy.warm_after_days,
        cold_after_days=policy.cold_after_days,
        delete_after_days=policy.delete_after_days,
        version=policy.version,
        updated_at=policy.updated_at,
        updated_by=policy.updated_by,
    )


def _limit(default: int = 50) -> int:
    value = params.text(app, "limit")
    if value is None:
        return default
    if not value.isdigit():
        raise BadRequest("limit must be a whole number")
    return int(value)


def _text_search(settings: MessagesApiSettings) -> tuple[Any, Any]:
    from functions.messages.logic.blind_index import BlindIndex
    from shared.crypto import TenantKeys
    from shared.secrets import TenantSecrets

    return BlindIndex(TenantKeys(TenantSecrets(settings.TENANT_SECRET_PREFIX))), DynamoMessageStore(
        settings.MESSAGES_TABLE_NAME
    )


@app.get(
    "/v1/messages",
    summary="Search messages",
    description=(
        "Filters: candidate_id, requisition_id, status, channel, since, until (ISO 8601 with offset), q (text, "
        "over content kept under a `full` policy), cursor, limit (1-100). Newest first."
    ),
    responses={200: {"description": "A page of messages"}, **error_responses(400, 401, 403)},
    tags=_TAGS,
    security=SECURED,
)
def get_messages() -> MessagePage:
    settings = load_settings(MessagesApiSettings)
    request = request_context(app)
    text = params.text(app, "q")
    index, terms = _text_search(settings) if text is not None else (None, None)
    result = search(
        request.actor,
        SearchRequest(
            candidate_id=params.text(app, "candidate_id"),
            requisition_id=params.text(app, "requisition_id"),
            status=params.choice(app, "status", Status),
            channel=params.choice(app, "channel", Channel),
            since=params.time(app, "since"),
            until=params.time(app, "until"),
            text=app.current_event.get_query_string_value("q"),
            cursor=params.text(app, "cursor"),
            limit=_limit(),
        ),
        store=DynamoMessageStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        opener=_Opener(settings.DATA_KEY_ARN),
        text_index=index,
        terms=terms,
        source_ip=request.source_ip,
    )
    return MessagePage(messages=[_output(f) for f in result.found], next_cursor=result.cursor)


@app.get(
    "/v1/messages/<message_id>",
    summary="Read a message",
    description=(
        "Its status history, parties and ids; its content only for `messages:content:read`. A message in the warm "
        "or cold tier (`tier`) is read back whole from the archive."
    ),
    responses={200: {"description": "The message"}, **error_responses(400, 401, 403, 404)},
    tags=_TAGS,
    security=SECURED,
)
def get_one(message_id: str) -> MessageOutput:
    from functions.messages.dal.archive import ArchivedMessages, S3MessageArchive

    settings = load_settings(MessagesApiSettings)
    request = request_context(app)
    found = get_message(
        request.actor,
        message_id,
        store=ArchivedMessages(
            DynamoMessageStore(settings.MESSAGES_TABLE_NAME), S3MessageArchive(settings.ARCHIVE_BUCKET_NAME)
        ),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        opener=_Opener(settings.DATA_KEY_ARN),
        source_ip=request.source_ip,
    )
    return _output(found)


@app.get(
    "/v1/threads/<thread_id>",
    summary="Read a thread",
    description="Every message of a thread, oldest first. Sends an ETag; If-None-Match with it answers 304.",
    responses={
        200: {"description": "The thread"},
        304: {"description": "Not modified"},
        **error_responses(400, 401, 403, 404),
    },
    tags=_TAGS,
    security=SECURED,
)
def get_one_thread(thread_id: str) -> Response[ThreadOutput | None]:
    settings = load_settings(MessagesApiSettings)
    request = request_context(app)
    thread = get_thread(
        request.actor,
        thread_id,
        store=DynamoMessageStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        opener=_Opener(settings.DATA_KEY_ARN),
        cursor=params.text(app, "cursor"),
        source_ip=request.source_ip,
    )
    headers = {"ETag": thread.etag, "Cache-Control": "private, max-age=30"}
    if (
        app.current_event.headers.get("if-none-match") == thread.etag
        or app.current_event.headers.get("If-None-Match") == thread.etag
    ):
        return Response(status_code=304, content_type=content_types.APPLICATION_JSON, body=None, headers=headers)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=ThreadOutput(
            thread_id=thread.thread_id, messages=[_output(f) for f in thread.found], next_cursor=thread.cursor
        ),
        headers=headers,
    )


@app.get(
    "/v1/message-policy",
    summary="Read the message policy",
    responses={200: {"description": "The policy"}, **error_responses(401, 403)},
    tags=_TAGS,
    security=SECURED,
)
def get_policy() -> MessagePolicyOutput:
    from functions.messages.dal.policy import DynamoPolicyStore
    from functions.messages.logic.policy import read_policy

    settings = load_settings(MessagesApiSettings)
    request = request_context(app)
    policy = read_policy(
        request.actor,
        store=DynamoPolicyStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _policy_output(policy)


@app.put(
    "/v1/message-policy",
    summary="Change the message policy",
    description=(
        "Pass the version read; a concurrent change answers 409. The periods (days after a message's first event) "
        "are optional, omitted ones unchanged, and must keep 1 <= warm_after_days < cold_after_days < "
        "delete_after_days <= 3650 (400 otherwise)."
    ),
    responses={200: {"description": "The new policy"}, **error_responses(400, 401, 403, 409)},
    tags=_TAGS,
    security=SECURED,
)
def put_policy(body: MessagePolicyUpdate) -> MessagePolicyOutput:
    from functions.messages.dal.policy import DynamoPolicyStore
    from functions.messages.logic.policy import TierDays, change_policy

    settings = load_settings(MessagesApiSettings)
    request = request_context(app)
    policy = change_policy(
        request.actor,
        body.content,
        body.version,
        store=DynamoPolicyStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
        tiers=TierDays(body.warm_after_days, body.cold_after_days, body.delete_after_days),
    )
    return _policy_output(policy)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
