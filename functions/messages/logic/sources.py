"""Which parser reads a queued delivery: one name per way a message event reaches the service.

The receivers check a delivery parses before they queue it (a malformed payload is a 400 and stored nowhere);
the ingest consumer parses it again when it applies it. Each provider's parser is imported on first use, so a
receiver loads only its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from functions.messages.models.message import MalformedPayload, ProviderEvent


class Source(StrEnum):
    """The `provider` of a queued delivery (the webhook route's name, or the internal path)."""

    SES_SNS = "ses-sns"  # SES events through SNS over HTTPS
    SES_EVENTBRIDGE = "ses"  # SES events on EventBridge
    TWILIO = "twilio"
    SENDGRID = "sendgrid"
    SENDGRID_INBOUND = "sendgrid-inbound"
    GRAPH = "graph"
    ATS = "ats"  # the ATS's own API
    SMTP = "smtp"  # raw MIME captured to S3


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedPayload("the body is not JSON") from None


def _ses_sns(body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    from functions.messages.logic.providers.ses import parse_sns_body

    return parse_sns_body(body)


def _ses_eventbridge(body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    from functions.messages.logic.providers.ses import parse_eventbridge

    event = _json(body)
    if not isinstance(event, Mapping):
        raise MalformedPayload("an EventBridge event is a JSON object")
    return parse_eventbridge(event)


def _twilio(body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    from urllib.parse import parse_qsl

    from functions.messages.logic.providers.twilio import parse_twilio

    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError):
        raise MalformedPayload("the body is not form-encoded") from None
    return parse_twilio(form, received_at=received_at)


def _sendgrid(body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    from functions.messages.logic.providers.sendgrid import parse_sendgrid

    return parse_sendgrid(body)


def _sendgrid_inbound(body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    from functions.messages.logic.providers.sendgrid import parse_inbound

    if not content_type:
        raise MalformedPayload("an Inbound Parse request needs its multipart content type")
    return parse_inbound(body, content_type, received_at=received_at)


def _graph(body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    from functions.messages.logic.providers.graph import parse_graph

    return parse_graph(body, received_at=received_at)


def _smtp(body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    from functions.messages.logic.providers.mime import parse_mime

    return [parse_mime(body, received_at=received_at)]


Parser = Callable[[bytes, "str | None", datetime], list[ProviderEvent]]
_PARSERS: dict[Source, Parser] = {
    Source.SES_SNS: _ses_sns,
    Source.SES_EVENTBRIDGE: _ses_eventbridge,
    Source.TWILIO: _twilio,
    Source.SENDGRID: _sendgrid,
    Source.SENDGRID_INBOUND: _sendgrid_inbound,
    Source.GRAPH: _graph,
    Source.SMTP: _smtp,
}


def events_of(source: str, body: bytes, content_type: str | None, received_at: datetime) -> list[ProviderEvent]:
    """The provider events in one delivery from `source`; MalformedPayload when it does not parse. The ATS's API
    deliveries are parsed by functions/messages/logic/record.py, which knows the tenant."""
    try:
        parser = _PARSERS[Source(source)]
    except (KeyError, ValueError):
        raise MalformedPayload(f"no parser for source {source!r}") from None
    try:
        return parser(body, content_type, received_at)
    except MalformedPayload:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # A payload that verified but is not the provider's format: named for the logs, never echoed.
        raise MalformedPayload(f"{source} payload not understood ({type(exc).__name__})") from None


SES_TENANT_TAG = "tenant"


def tenant_of_ses_event(event: Mapping[str, Any]) -> str:
    """The tenant of an SES event that EventBridge delivered (no webhook path names it): the `tenant` message tag
    our sending integration sets on every message (SES publishes the tags with every event). Only SES in this
    account can put `aws.ses` events on the default bus, so the tag is ours; a tag that is not a well-formed
    tenant id is refused."""
    import re

    from shared.keys import TENANT_PATTERN

    detail = event.get("detail")
    mail = detail.get("mail") if isinstance(detail, Mapping) else None
    tags = mail.get("tags") if isinstance(mail, Mapping) else None
    values = tags.get(SES_TENANT_TAG) if isinstance(tags, Mapping) else None
    tenant = values[0] if isinstance(values, list) and values else None
    if not isinstance(tenant, str) or not re.match(TENANT_PATTERN, tenant):
        raise MalformedPayload(f"the SES event carries no `{SES_TENANT_TAG}` message tag naming a tenant")
    return tenant
