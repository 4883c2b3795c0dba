"""Microsoft Graph change notifications for Teams messages (`chats/{id}/messages`, `teams/{id}/channels/{id}/
messages`, and the tenant-wide `getAllMessages` subscriptions, whose notifications name the same resources).

- Without resource data a notification holds ids only: one event per created/updated/deleted message, status
  SENT, channel TEAMS, the chat or channel id as conversation, the message id as key, and the time the platform
  received it (Graph sends no event time). The direction is not known: OUTBOUND (what the ATS posts); the ATS's
  own record of the message (providers/ats.py) is what carries the truth.
- With resource data (`encryptedContent`, subscriptions with `includeResourceData`) the caller's `decrypt`
  callable returns the chatMessage (`decrypt_resource_data` does it as Microsoft documents): sender, body (HTML
  reduced to text), subject, the message's own times, replies' parent, and the direction: a message from a user
  outside the tenant (a guest, federated, consumer or email identity, or another tenant id) is INBOUND and
  DELIVERED (received by us); anything else is OUTBOUND and SENT. System event messages carry no event.
- Lifecycle notifications (`lifecycleEvent`: reauthorizationRequired, subscriptionRemoved, missed) and change
  types Graph may add later give no event: they are for the subscription manager, not messages.
- Event id: the notification's `id` with its change type when Graph sends one, else the SHA-256 of the fields
  that identify it (subscription, change type, resource, and the message's last-modified time when known), so
  a redelivered notification is the same event.
- A deleted message has no status of its own in the lifecycle: its event keeps the status (a deletion never
  undoes a send) and says `deleted=true` in `detail`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from functions.messages.logic.providers.mime import EVENT_ID, html_to_text
from functions.messages.models.message import (
    Channel,
    Direction,
    MalformedPayload,
    Party,
    Provider,
    ProviderEvent,
    Status,
)
from shared import clock

Decrypt = Callable[[Mapping[str, Any]], Mapping[str, Any]]

CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
# teamworkUserIdentityType values of people outside the tenant: a candidate writing in Teams is one of these.
EXTERNAL_IDENTITIES = frozenset(
    {"anonymousGuest", "federatedUser", "personalMicrosoftAccountUser", "skypeUser", "phoneUser", "emailUser"}
)

_SEGMENT = re.compile(r"([A-Za-z]+)\('([^']*)'\)")
_ID = re.compile(r"^[A-Za-z0-9_:.@=+-]{1,200}$")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_graph(
    body: bytes, *, decrypt: Decrypt | None = None, received_at: datetime | None = None
) -> list[ProviderEvent]:
    """The message events of a change-notification collection (`{"value": [...]}`), in order.

    `decrypt` turns a notification's `encryptedContent` into the chatMessage it carries (None: resource data is
    ignored and the event holds ids only). `received_at` stands in for the time Graph does not send (default:
    the platform clock). MalformedPayload when the body is not a notification collection or a notification
    names no message."""
    if received_at is not None and received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MalformedPayload("the Graph notification body is not JSON") from exc
    notifications = document.get("value") if isinstance(document, dict) else None
    if not isinstance(notifications, list):
        raise MalformedPayload("the Graph notification body has no value list")
    now = (received_at or clock.now()).astimezone(UTC)
    events: list[ProviderEvent] = []
    for notification in notifications:
        if not isinstance(notification, Mapping):
            raise MalformedPayload("a Graph notification is not an object")
        event = _event(notification, decrypt, now)
        if event is not None:
            events.append(event)
    return events


def decrypt_resource_data(encrypted: Mapping[str, Any], private_key_pem: bytes) -> Mapping[str, Any]:
    """The resource a notification's `encryptedContent` carries, decrypted as Microsoft documents it ("Decrypting
    resource data from change notifications"): the RSA private key recovers the symmetric key from `dataKey`
    (OAEP with SHA-1), HMAC-SHA256 of `data` under that key must equal `dataSignature` (checked before any
    decryption), then AES-CBC with the first 16 bytes of the key as IV and PKCS7 padding gives the JSON resource.

    Pick the key by `encryptionCertificateId` when several are held (rotation). MalformedPayload when a field is
    missing or not base64, the key does not open `dataKey`, the signature differs or the plaintext is not a JSON
    object; ValueError when `private_key_pem` is not an RSA private key."""
    import base64
    import binascii
    import hmac

    from cryptography.hazmat.primitives import hashes, padding, serialization
    from cryptography.hazmat.primitives.asymmetric import padding as asymmetric
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    names = ("data", "dataKey", "dataSignature")
    for name in names:
        if not isinstance(encrypted.get(name), str) or not encrypted[name]:
            raise MalformedPayload(f"encryptedContent has no {name}")
    fields: dict[str, bytes] = {}
    for name in names:
        try:
            fields[name] = base64.b64decode(encrypted[name], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedPayload(f"encryptedContent.{name} is not base64") from exc

    private_key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("the Graph encryption key is not an RSA private key")
    try:
        key = private_key.decrypt(
            fields["dataKey"],
            asymmetric.OAEP(mgf=asymmetric.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
        )
    except ValueError as exc:
        raise MalformedPayload("encryptedContent.dataKey does not decrypt with this key") from exc
    if len(key) not in (16, 24, 32):
        raise MalformedPayload("encryptedContent.dataKey is not an AES key")

    expected = hmac.new(key, fields["data"], hashlib.sha256).digest()
    if not hmac.compare_digest(expected, fields["dataSignature"]):
        raise MalformedPayload("encryptedContent.dataSignature does not match data")

    if len(fields["data"]) % 16:
        raise MalformedPayload("encryptedContent.data is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(decryptor.update(fields["data"]) + decryptor.finalize()) + unpadder.finalize()
        resource = json.loads(plain)
    except ValueError as exc:  # bad padding, not UTF-8, not JSON
        raise MalformedPayload("encryptedContent.data does not decrypt to JSON") from exc
    if not isinstance(resource, dict):
        raise MalformedPayload("encryptedContent.data is not a JSON object")
    return resource


# ---- one notification ------------------------------------------------------------------------------------------


def _event(notification: Mapping[str, Any], decrypt: Decrypt | None, now: datetime) -> ProviderEvent | None:
    if "lifecycleEvent" in notification:
        return None
    change = notification.get("changeType")
    if not isinstance(change, str):
        raise MalformedPayload("a Graph notification has neither changeType nor lifecycleEvent")
    if change not in CHANGE_TYPES:
        return None  # a change type Graph adds later (`unknownFutureValue`): nothing we know how to apply
    where = _resource(notification)
    if where is None:
        return None  # not a message (a chat or a member): subscriptions we do not keep messages for

    resource: Mapping[str, Any] | None = None
    encrypted = notification.get("encryptedContent")
    if decrypt is not None and isinstance(encrypted, Mapping):
        resource = decrypt(encrypted)
        if not isinstance(resource, Mapping):
            raise MalformedPayload("the decrypted resource is not an object")
        if resource.get("id") is not None and str(resource["id"]) != where["message"]:
            raise MalformedPayload("the decrypted message is not the one the notification names")
        if resource.get("messageType", "message") != "message":
            return None  # system event messages (members added, chat renamed): not a message anyone wrote

    direction = _direction(resource, notification) if resource is not None else Direction.OUTBOUND
    deleted = change == "deleted" or bool(resource and resource.get("deletedDateTime"))
    sender = _sender(resource) if resource is not None else None
    body = _body(resource) if resource is not None else None
    subject = resource.get("subject") if resource is not None else None
    tags: dict[str, str] = {}
    subscription = notification.get("subscriptionId")
    if isinstance(subscription, str) and _ID.match(subscription):
        tags["subscription_id"] = subscription
    if "team" in where:
        tags["team_id"] = where["team"]
    return ProviderEvent(
        provider=Provider.GRAPH,
        event_id=_event_id(notification, change, resource),
        message_key=where["message"],
        channel=Channel.TEAMS,
        direction=direction,
        status=Status.DELIVERED if direction is Direction.INBOUND else Status.SENT,
        occurred_at=_occurred_at(resource, change, now),
        provider_event=change,
        in_reply_to=where.get("parent") or _reply_to(resource),
        conversation_id=where["conversation"],
        sender=sender,
        subject=subject if isinstance(subject, str) and subject.strip() else None,
        body=body,
        detail="deleted=true" if deleted else None,
        tags=tags,
    )


def _resource(notification: Mapping[str, Any]) -> dict[str, str] | None:
    """Chat or channel, conversation id, message id (and parent message for a channel reply) of the resource
    path, in Graph's `chats('…')/messages('…')` form or the plain `chats/…/messages/…` one."""
    resource = notification.get("resource")
    if not isinstance(resource, str) or not resource:
        data = notification.get("resourceData")
        resource = data.get("@odata.id") if isinstance(data, Mapping) else None
    if not isinstance(resource, str) or not resource:
        raise MalformedPayload("a Graph notification names no resource")
    path = _SEGMENT.sub(lambda m: f"{m.group(1)}/{m.group(2)}", resource.strip().strip("/")).split("/")
    names = [part.lower() for part in path[::2]]
    ids = path[1::2]
    found: dict[str, str] | None = None
    if names == ["chats", "messages"] and len(ids) == 2:
        found = {"conversation": ids[0], "message": ids[1]}
    elif names == ["teams", "channels", "messages"] and len(ids) == 3:
        found = {"team": ids[0], "conversation": ids[1], "message": ids[2]}
    elif names == ["teams", "channels", "messages", "replies"] and len(ids) == 4:
        found = {"team": ids[0], "conversation": ids[1], "parent": ids[2], "message": ids[3]}
    if found is None:
        return None
    if not all(_ID.match(value) for value in found.values()):
        raise MalformedPayload("a Graph resource id has characters outside the id alphabet")
    return found


def _event_id(notification: Mapping[str, Any], change: str, resource: Mapping[str, Any] | None) -> str:
    own = notification.get("id")
    if isinstance(own, str) and _ID.match(own) and EVENT_ID.match(f"{own}:{change}"):
        return f"{own}:{change}"
    canonical = json.dumps(
        [
            notification.get("subscriptionId"),
            change,
            notification.get("resource"),
            resource.get("lastModifiedDateTime") if resource is not None else None,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _direction(resource: Mapping[str, Any], notification: Mapping[str, Any]) -> Direction:
    user = _get(resource, "from", "user")
    if not isinstance(user, Mapping):
        return Direction.OUTBOUND  # an application (the ATS's bot) or no sender
    if user.get("userIdentityType") in EXTERNAL_IDENTITIES:
        return Direction.INBOUND
    home, tenant = user.get("tenantId"), notification.get("tenantId")
    if isinstance(home, str) and isinstance(tenant, str) and home and home != tenant:
        return Direction.INBOUND
    return Direction.OUTBOUND


def _sender(resource: Mapping[str, Any]) -> Party | None:
    for kind in ("user", "application", "device"):
        identity = _get(resource, "from", kind)
        if isinstance(identity, Mapping) and isinstance(identity.get("id"), str) and identity["id"]:
            name = identity.get("displayName")
            return Party(address=identity["id"], name=name if isinstance(name, str) and name else None)
    return None


def _body(resource: Mapping[str, Any]) -> str | None:
    body = resource.get("body")
    if not isinstance(body, Mapping) or not isinstance(body.get("content"), str):
        return None
    content: str = body["content"]
    if str(body.get("contentType", "text")).lower() == "html":
        content = html_to_text(content)
    return content.strip() or None


def _reply_to(resource: Mapping[str, Any] | None) -> str | None:
    parent = resource.get("replyToId") if resource is not None else None
    return parent if isinstance(parent, str) and _ID.match(parent) else None


def _occurred_at(resource: Mapping[str, Any] | None, change: str, now: datetime) -> datetime:
    """The message's own time for the change when the resource carries it, else when the platform received it."""
    if resource is None:
        return now
    order = {
        "created": ("createdDateTime",),
        "updated": ("lastEditedDateTime", "lastModifiedDateTime"),
        "deleted": ("deletedDateTime", "lastModifiedDateTime"),
    }[change]
    for name in order:
        value = resource.get(name)
        if isinstance(value, str) and value:
            return _parse_time(value)
    return now


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value))
    except ValueError as exc:
        raise MalformedPayload("a Graph date is not ISO 8601") from exc
    return parsed.replace(tzinfo=UTC) if parsed.utcoffset() is None else parsed.astimezone(UTC)


def _get(value: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value
