"""Legal holds on messages and the disclosure redaction (compliance officers; holds also company admins):

- GET /v1/message-holds: the tenant's holds, active by default (`?status=all`), cursor pages.
- PUT /v1/message-holds/{hold_id}: place a hold on a message, a candidate's or a requisition's messages
  (idempotent on the hold id; 202 while marking the messages goes on: repeat the request).
- GET /v1/message-holds/{hold_id}: one hold.
- POST /v1/message-holds/{hold_id}/release: release it.
- POST /v1/messages/{message_id}/redaction: remove a message's content, keeping its metadata and content hash.

Every call is audited by its permission check; placing and releasing publish `MessageHoldChanged`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.dal.holds import DynamoHoldStore
from functions.messages.dal.messages import DynamoMessageStore
from functions.messages.logic.holds import HoldRequest, get_hold, list_holds, place_hold, release_hold
from functions.messages.models.holds_io import (
    MessageHold,
    MessageHoldInput,
    MessageHoldOutput,
    MessageHoldPage,
    MessageReleaseInput,
    RedactionInput,
    RedactionOutput,
)
from shared.audit import DynamoAuditLog
from shared.http import SECURED, build_resolver, error_responses, ok_response, request_context
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    from shared.events import EventPublisher


class MessageHoldsApiSettings(BaseSettings):
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)


app = build_resolver()
_TAGS = ["messages"]


def _output(hold: MessageHold) -> MessageHoldOutput:
    return MessageHoldOutput(
        hold_id=hold.hold_id,
        subject_kind=hold.subject_kind,
        subject_id=hold.subject_id,
        reason=hold.reason,
        owner=hold.owner,
        review_at=hold.review_at,
        placed_at=hold.placed_at,
        placed_by=hold.placed_by,
        active=hold.active,
        released_at=hold.released_at,
        released_by=hold.released_by,
        release_reason=hold.release_reason,
        messages_held=hold.messages_held,
        fanout_complete=hold.fanout_cursor is None,
    )


def _publisher(settings: MessageHoldsApiSettings) -> EventPublisher:
    from functions.messages.models.events import SOURCE
    from shared.events import bus_publisher

    return bus_publisher(settings.EVENT_BUS_NAME, SOURCE)


class _Opener:
    """Opens sealed content for a redaction (the KMS client is created then)."""

    def __init__(self, key_arn: str) -> None:
        self._key_arn = key_arn

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        from shared.crypto import FieldCipher

        return FieldCipher(self._key_arn).decrypt(tenant, "message", sealed, record=message_id, field=field_name)


@app.get(
    "/v1/message-holds",
    summary="List legal holds on messages",
    description=(
        "The tenant's holds in hold-id order: active ones by default, `status=all` for released ones too. "
        "`limit` 1 to 100 (default 50); pass `next_cursor` back as `cursor` for the next page."
    ),
    responses={**ok_response(MessageHoldPage, "A page of holds"), **error_responses(400, 401, 403)},
    tags=_TAGS,
    security=SECURED,
)
def list_message_holds(status: str = "active", limit: int = 50, cursor: str | None = None) -> MessageHoldPage:
    settings = load_settings(MessageHoldsApiSettings)
    request = request_context(app)
    holds, next_cursor = list_holds(
        request.actor,
        status=status,
        limit=limit,
        cursor=cursor,
        holds=DynamoHoldStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return MessageHoldPage(holds=[_output(h) for h in holds], next_cursor=next_cursor)


@app.put(
    "/v1/message-holds/<hold_id>",
    summary="Place a legal hold on messages",
    description=(
        "Holds one message, or every message of a candidate or a requisition (those stored later too): their "
        "content is neither erased nor redacted until the hold is released. Idempotent on the hold id; the same id "
        "with other facts, or a released id, is a 409. 202 when marking the messages stopped on its time budget: "
        "the hold already protects them; repeat the request to finish marking."
    ),
    responses={
        **ok_response(MessageHoldOutput, "Already placed"),
        201: {"description": "Placed", "content": {"application/json": {"model": MessageHoldOutput}}},
        202: {"description": "Placed; marking goes on", "content": {"application/json": {"model": MessageHoldOutput}}},
        **error_responses(400, 401, 403, 404, 409),
    },
    tags=_TAGS,
    security=SECURED,
)
def put_message_hold(hold_id: str, body: MessageHoldInput) -> Response[MessageHoldOutput]:
    settings = load_settings(MessageHoldsApiSettings)
    request = request_context(app)
    hold, created = place_hold(
        request.actor,
        hold_id,
        HoldRequest(
            subject_kind=body.subject_kind,
            subject_id=body.subject_id,
            reason=body.reason,
            owner=body.owner,
            review_at=body.review_at,
        ),
        holds=DynamoHoldStore(settings.MESSAGES_TABLE_NAME),
        messages=DynamoMessageStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        publisher=_publisher(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    status = 202 if hold.fanout_cursor else 201 if created else 200
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=_output(hold))


@app.get(
    "/v1/message-holds/<hold_id>",
    summary="Read a legal hold on messages",
    description="One hold of the caller's tenant, active or released; another tenant's id answers 404.",
    responses={**ok_response(MessageHoldOutput, "The hold"), **error_responses(400, 401, 403, 404)},
    tags=_TAGS,
    security=SECURED,
)
def get_message_hold(hold_id: str) -> MessageHoldOutput:
    settings = load_settings(MessageHoldsApiSettings)
    request = request_context(app)
    hold = get_hold(
        request.actor,
        hold_id,
        holds=DynamoHoldStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    return _output(hold)


@app.post(
    "/v1/message-holds/<hold_id>/release",
    summary="Release a legal hold on messages",
    description=(
        "Ends the hold: erasures it kept back are finished. A repeat returns the first release; 202 while "
        "unmarking the messages goes on (repeat the request)."
    ),
    responses={
        **ok_response(MessageHoldOutput, "Released"),
        202: {
            "description": "Released; unmarking goes on",
            "content": {"application/json": {"model": MessageHoldOutput}},
        },
        **error_responses(400, 401, 403, 404),
    },
    tags=_TAGS,
    security=SECURED,
)
def release_message_hold(hold_id: str, body: MessageReleaseInput) -> Response[MessageHoldOutput]:
    settings = load_settings(MessageHoldsApiSettings)
    request = request_context(app)
    hold = release_hold(
        request.actor,
        hold_id,
        body.reason,
        holds=DynamoHoldStore(settings.MESSAGES_TABLE_NAME),
        messages=DynamoMessageStore(settings.MESSAGES_TABLE_NAME),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        publisher=_publisher(settings),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    status = 202 if hold.fanout_cursor else 200
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=_output(hold))


@app.post(
    "/v1/messages/<message_id>/redaction",
    summary="Redact a message on a disclosure request",
    description=(
        "Removes the message's subject, body and search terms; keeps its metadata, parties, history and the "
        "SHA-256 of what was removed. Compliance officers. A message under a legal hold is a 409 (a hold keeps "
        "content for legal claims). Idempotent."
    ),
    responses={**ok_response(RedactionOutput, "Redacted"), **error_responses(400, 401, 403, 404, 409)},
    tags=_TAGS,
    security=SECURED,
)
def redact(message_id: str, body: RedactionInput) -> RedactionOutput:
    from functions.messages.dal.archive import ArchivedMessages, S3MessageArchive
    from functions.messages.dal.terms import DynamoTermStore
    from functions.messages.logic.blind_index import BlindIndex
    from functions.messages.logic.holds import ActiveHolds
    from functions.messages.logic.redaction import ContentTools, redact_message
    from shared.crypto import TenantKeys
    from shared.secrets import TenantSecrets

    settings = load_settings(MessageHoldsApiSettings)
    request = request_context(app)
    removal = redact_message(
        request.actor,
        message_id,
        body.reason,
        store=ArchivedMessages(
            DynamoMessageStore(settings.MESSAGES_TABLE_NAME), S3MessageArchive(settings.ARCHIVE_BUCKET_NAME)
        ),
        holds=ActiveHolds(DynamoHoldStore(settings.MESSAGES_TABLE_NAME)),
        tools=ContentTools(
            opener=_Opener(settings.DATA_KEY_ARN),
            index=BlindIndex(TenantKeys(TenantSecrets(settings.TENANT_SECRET_PREFIX))),
            terms=DynamoTermStore(settings.MESSAGES_TABLE_NAME),
        ),
        audit=DynamoAuditLog(settings.AUDIT_TABLE_NAME),
        request_id=request.request_id,
        source_ip=request.source_ip,
    )
    state = removal.state
    assert state.redacted_at is not None
    return RedactionOutput(
        message_id=state.message_id,
        redacted_at=state.redacted_at,
        content_hash=state.content_hash,
        content_removed=removal.content_removed,
        terms_removed=removal.terms_removed,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
