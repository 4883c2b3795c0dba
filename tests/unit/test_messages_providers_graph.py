"""Microsoft Graph change notifications for Teams messages (functions/messages/logic/providers/graph.py).

The two samples are Microsoft's own ("Get change notifications for messages in Teams channels and chats":
notification payloads without and with resource data). Microsoft does not publish the private key behind its
encrypted example (its `encryptedContent` values are placeholders), so the decryption tests encrypt the
documented decrypted chatMessage themselves, exactly as "Decrypting resource data from change notifications"
describes, with an RSA key generated here."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from functions.messages.logic.providers.graph import decrypt_resource_data, parse_graph
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
from tests.conftest import sample_event

RECEIVED = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
CHANNEL_ID = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
TEAM_ID = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b"
CHAT_ID = "19:8ea0e38b-efb3-4757-924a-5f94061cf8c2_97f62344-57dc-409c-88ad-c4af14158ff5@unq.gbl.spaces"

# The documented decrypted payload (same page), with its id set to the message the documented notification names
# (the page's two examples name different messages: 1612289992105 and 1612289765949).
DECRYPTED_CHAT_MESSAGE: dict[str, Any] = {
    "id": "1612289765949",
    "replyToId": None,
    "etag": "1612289992105",
    "messageType": "message",
    "createdDateTime": "2021-02-02T18:19:52Z",
    "lastModifiedDateTime": "2021-02-02T18:19:52.105Z",
    "lastEditedDateTime": None,
    "deletedDateTime": None,
    "subject": None,
    "summary": None,
    "chatId": CHAT_ID,
    "importance": "normal",
    "locale": "en-us",
    "webUrl": None,
    "from": {
        "application": None,
        "device": None,
        "user": {
            "id": "8ea0e38b-efb3-4757-924a-5f94061cf8c2",
            "displayName": "Ramjot Singh",
            "userIdentityType": "aadUser",
        },
        "conversation": None,
    },
    "body": {"contentType": "text", "content": "test"},
    "channelIdentity": None,
    "attachments": [],
    "mentions": [],
    "policyViolation": None,
    "reactions": [],
    "replies": [],
    "hostedContents": [],
}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encrypt_like_graph(plaintext: bytes, public_key: rsa.RSAPublicKey) -> dict[str, str]:
    """What Microsoft Graph puts in `encryptedContent`: a fresh AES-256 key, AES-CBC (IV = the key's first 16
    bytes, PKCS7), HMAC-SHA256 of the ciphertext, the key under RSA-OAEP with SHA-1."""
    key = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    data = encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
    oaep = asymmetric.OAEP(mgf=asymmetric.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return {
        "data": b64(data),
        "dataSignature": b64(hmac.new(key, data, hashlib.sha256).digest()),
        "dataKey": b64(public_key.encrypt(key, oaep)),
        "encryptionCertificateId": "MySelfSignedCert/DDC9651A-D7BC-4D74-86BC-A8923584B0AB",
        "encryptionCertificateThumbprint": "07293748CC064953A3052FB978C735FB89E61C3D",
    }


def with_resource_data(resource: dict[str, Any], public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    notification = sample_event("graph_notification_with_resource_data.json")
    notification["value"][0]["encryptedContent"] = encrypt_like_graph(json.dumps(resource).encode(), public_key)
    return notification


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def canonical_id(subscription: str, change: str, resource: str, modified: str | None) -> str:
    return hashlib.sha256(
        json.dumps([subscription, change, resource, modified], separators=(",", ":")).encode()
    ).hexdigest()


# ---- without resource data -------------------------------------------------------------------------------------


def test_the_sample_without_resource_data_gives_ids_only() -> None:
    sample = sample_event("graph_chat_message_notification.json")
    notification = sample["value"][0]

    events = parse_graph(body(sample), received_at=RECEIVED)

    assert events == [
        ProviderEvent(
            provider=Provider.GRAPH,
            event_id=canonical_id(notification["subscriptionId"], "created", notification["resource"], None),
            message_key="1612293113399",
            channel=Channel.TEAMS,
            direction=Direction.OUTBOUND,
            status=Status.SENT,
            occurred_at=RECEIVED,
            provider_event="created",
            rfc_message_id=None,
            in_reply_to=None,
            references=(),
            conversation_id=CHANNEL_ID,
            sender=None,
            recipients=(),
            subject=None,
            body=None,
            candidate_id=None,
            requisition_id=None,
            permanent=False,
            detail=None,
            attempt=None,
            tags={"subscription_id": "9f9d1ed0-c9cc-42e7-8d80-a7fc4b0cda3c", "team_id": TEAM_ID},
        )
    ]


def test_a_redelivered_notification_is_the_same_event_and_another_change_is_not() -> None:
    sample = sample_event("graph_chat_message_notification.json")
    first = parse_graph(body(sample), received_at=RECEIVED)[0]
    again = parse_graph(body(sample), received_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC))[0]
    sample["value"][0]["changeType"] = "updated"
    updated = parse_graph(body(sample), received_at=RECEIVED)[0]

    assert again.event_id == first.event_id
    assert updated.event_id != first.event_id
    assert (updated.status, updated.provider_event, updated.detail) == (Status.SENT, "updated", None)


def test_a_deleted_message_keeps_its_status_and_says_so() -> None:
    sample = sample_event("graph_chat_message_notification.json")
    sample["value"][0]["changeType"] = "deleted"

    event = parse_graph(body(sample), received_at=RECEIVED)[0]

    assert (event.status, event.provider_event, event.detail) == (Status.SENT, "deleted", "deleted=true")


def test_a_notification_id_names_the_event() -> None:
    sample = sample_event("graph_chat_message_notification.json")
    sample["value"][0]["id"] = "lsgTZMr9KwAAA"

    assert parse_graph(body(sample), received_at=RECEIVED)[0].event_id == "lsgTZMr9KwAAA:created"


def test_the_sample_with_resource_data_but_no_key_gives_ids_only() -> None:
    sample = sample_event("graph_notification_with_resource_data.json")

    [event] = parse_graph(body(sample), received_at=RECEIVED)

    assert (event.message_key, event.conversation_id) == ("1612289765949", CHAT_ID)
    assert event.tags == {"subscription_id": "10493aa0-4d29-4df5-bc0c-ef742cc6cd7f"}
    assert (event.sender, event.body, event.occurred_at) == (None, None, RECEIVED)


def test_a_channel_reply_names_its_parent() -> None:
    # The resource of Microsoft's encrypted example ("Set up change notifications that include resource data").
    sample = sample_event("graph_chat_message_notification.json")
    sample["value"][0]["resource"] = (
        "teams('d29828b8-c04d-4e2a-b2f6-07da6982f0f0')/channels('19:f127a8c55ad949d1a238464d22f0f99e@thread.skype')"
        "/messages('1565045424600')/replies('1565047490246')"
    )

    [event] = parse_graph(body(sample), received_at=RECEIVED)

    assert (event.message_key, event.in_reply_to) == ("1565047490246", "1565045424600")
    assert event.conversation_id == "19:f127a8c55ad949d1a238464d22f0f99e@thread.skype"
    assert event.tags["team_id"] == "d29828b8-c04d-4e2a-b2f6-07da6982f0f0"


def test_a_plain_resource_path_is_read_too() -> None:
    sample = sample_event("graph_chat_message_notification.json")
    sample["value"][0]["resource"] = f"/chats/{CHAT_ID}/messages/1612289765949"

    [event] = parse_graph(body(sample), received_at=RECEIVED)

    assert (event.conversation_id, event.message_key) == (CHAT_ID, "1612289765949")


def test_without_received_at_the_event_is_the_platform_clocks_now() -> None:
    clock.freeze(RECEIVED)
    try:
        [event] = parse_graph(body(sample_event("graph_chat_message_notification.json")))
    finally:
        clock.freeze(None)

    assert event.occurred_at == RECEIVED


# ---- what is not a message -------------------------------------------------------------------------------------


def test_lifecycle_notifications_are_not_messages() -> None:
    lifecycle = {
        "value": [
            {
                "subscriptionId": "10493aa0-4d29-4df5-bc0c-ef742cc6cd7f",
                "subscriptionExpirationDateTime": "2021-02-02T10:30:34.9097561-08:00",
                "tenantId": "<<--TenantForWhichNotificationWasSent-->>",
                "clientState": "<<--SpecifiedClientState-->>",
                "lifecycleEvent": "reauthorizationRequired",
            }
        ]
    }

    assert parse_graph(body(lifecycle), received_at=RECEIVED) == []


def test_change_types_graph_adds_later_and_other_resources_are_skipped() -> None:
    sample = sample_event("graph_chat_message_notification.json")
    future = copy.deepcopy(sample["value"][0]) | {"changeType": "unknownFutureValue"}
    a_chat = copy.deepcopy(sample["value"][0]) | {"resource": f"chats('{CHAT_ID}')"}
    sample["value"] = [future, a_chat, sample["value"][0]]

    events = parse_graph(body(sample), received_at=RECEIVED)

    assert [e.message_key for e in events] == ["1612293113399"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "no value list"),
        (b'{"value": {}}', "no value list"),
        (b'{"value": ["x"]}', "not an object"),
        (b'{"value": [{"resource": "chats(\'a\')/messages(\'1\')"}]}', "neither changeType"),
        (b'{"value": [{"changeType": "created"}]}', "names no resource"),
        (b'{"value": [{"changeType": "created", "resource": "chats(\'a b\')/messages(\'1\')"}]}', "id alphabet"),
    ],
)
def test_a_body_that_is_not_a_notification_collection_is_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedPayload, match=reason):
        parse_graph(raw, received_at=RECEIVED)


def test_a_naive_received_at_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_graph(b'{"value": []}', received_at=datetime(2026, 11, 27))  # noqa: DTZ001


# ---- with resource data ----------------------------------------------------------------------------------------


def test_the_documented_chat_message_decrypts_into_every_field(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    notification = with_resource_data(DECRYPTED_CHAT_MESSAGE, rsa_key.public_key())
    subscription = notification["value"][0]["subscriptionId"]
    resource = notification["value"][0]["resource"]

    events = parse_graph(
        body(notification), decrypt=lambda encrypted: decrypt_resource_data(encrypted, pem), received_at=RECEIVED
    )

    assert events == [
        ProviderEvent(
            provider=Provider.GRAPH,
            event_id=canonical_id(subscription, "created", resource, "2021-02-02T18:19:52.105Z"),
            message_key="1612289765949",
            channel=Channel.TEAMS,
            direction=Direction.OUTBOUND,
            status=Status.SENT,
            occurred_at=datetime(2021, 2, 2, 18, 19, 52, tzinfo=UTC),
            provider_event="created",
            in_reply_to=None,
            conversation_id=CHAT_ID,
            sender=Party(address="8ea0e38b-efb3-4757-924a-5f94061cf8c2", name="Ramjot Singh"),
            subject=None,
            body="test",
            detail=None,
            tags={"subscription_id": subscription},
        )
    ]


def test_a_message_from_outside_the_tenant_is_inbound_and_delivered(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    external = copy.deepcopy(DECRYPTED_CHAT_MESSAGE)
    external["from"]["user"]["userIdentityType"] = "anonymousGuest"
    external["body"] = {"contentType": "html", "content": "<div><p>Thanks, see you &amp; the team on Monday</p></div>"}
    other_tenant = copy.deepcopy(DECRYPTED_CHAT_MESSAGE)
    other_tenant["from"]["user"]["tenantId"] = "72f988bf-86f1-41af-91ab-2d7cd011db47"

    guest = parse_graph(
        body(with_resource_data(external, rsa_key.public_key())),
        decrypt=lambda encrypted: decrypt_resource_data(encrypted, pem),
    )[0]
    federated = parse_graph(
        body(with_resource_data(other_tenant, rsa_key.public_key())),
        decrypt=lambda encrypted: decrypt_resource_data(encrypted, pem),
    )[0]

    assert (guest.direction, guest.status) == (Direction.INBOUND, Status.DELIVERED)
    assert guest.body == "Thanks, see you & the team on Monday"
    assert (federated.direction, federated.status) == (Direction.INBOUND, Status.DELIVERED)


def test_an_edit_and_a_soft_delete_use_the_messages_own_times(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    edited = copy.deepcopy(DECRYPTED_CHAT_MESSAGE) | {
        "lastEditedDateTime": "2021-02-02T18:25:00.1234567Z",
        "lastModifiedDateTime": "2021-02-02T18:25:00.1234567Z",
    }
    deleted = copy.deepcopy(DECRYPTED_CHAT_MESSAGE) | {"deletedDateTime": "2021-02-02T18:30:00Z"}
    decrypt = lambda encrypted: decrypt_resource_data(encrypted, pem)  # noqa: E731

    update = with_resource_data(edited, rsa_key.public_key())
    update["value"][0]["changeType"] = "updated"
    removal = with_resource_data(deleted, rsa_key.public_key())
    removal["value"][0]["changeType"] = "updated"
    [edit_event] = parse_graph(body(update), decrypt=decrypt)
    [delete_event] = parse_graph(body(removal), decrypt=decrypt)

    assert edit_event.occurred_at == datetime(2021, 2, 2, 18, 25, 0, 123456, tzinfo=UTC)
    assert (edit_event.provider_event, edit_event.detail) == ("updated", None)
    assert delete_event.detail == "deleted=true"


def test_system_event_messages_are_not_messages(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    system = copy.deepcopy(DECRYPTED_CHAT_MESSAGE) | {"messageType": "systemEventMessage", "from": None}

    events = parse_graph(
        body(with_resource_data(system, rsa_key.public_key())),
        decrypt=lambda encrypted: decrypt_resource_data(encrypted, pem),
    )

    assert events == []


def test_decrypted_data_for_another_message_is_refused(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    other = copy.deepcopy(DECRYPTED_CHAT_MESSAGE) | {"id": "1612289992105"}

    with pytest.raises(MalformedPayload, match="not the one the notification names"):
        parse_graph(
            body(with_resource_data(other, rsa_key.public_key())),
            decrypt=lambda encrypted: decrypt_resource_data(encrypted, pem),
        )


# ---- decryption refusals ---------------------------------------------------------------------------------------


def encrypted_sample(rsa_key: rsa.RSAPrivateKey) -> dict[str, str]:
    return encrypt_like_graph(json.dumps(DECRYPTED_CHAT_MESSAGE).encode(), rsa_key.public_key())


def test_decrypt_resource_data_returns_the_resource(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    assert decrypt_resource_data(encrypted_sample(rsa_key), pem) == DECRYPTED_CHAT_MESSAGE


def test_the_documented_placeholders_do_not_decrypt(pem: bytes) -> None:
    documented = sample_event("graph_notification_with_resource_data.json")["value"][0]["encryptedContent"]

    with pytest.raises(MalformedPayload, match="dataSignature"):  # the chatMessage page's example has none
        decrypt_resource_data(documented, pem)


def test_tampered_data_is_refused_before_decryption(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    encrypted = encrypted_sample(rsa_key)
    data = bytearray(base64.b64decode(encrypted["data"]))
    data[0] ^= 1
    encrypted["data"] = b64(bytes(data))

    with pytest.raises(MalformedPayload, match="dataSignature does not match"):
        decrypt_resource_data(encrypted, pem)


def test_a_key_that_is_not_the_subscriptions_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    with pytest.raises(MalformedPayload, match="does not decrypt with this key"):
        decrypt_resource_data(encrypted_sample(rsa_key), other)


def test_a_non_rsa_key_is_a_configuration_bug(rsa_key: rsa.RSAPrivateKey) -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    with pytest.raises(ValueError, match="not an RSA private key"):
        decrypt_resource_data(encrypted_sample(rsa_key), ec_pem)


@pytest.mark.parametrize("field", ["data", "dataKey", "dataSignature"])
def test_a_missing_or_non_base64_field_is_refused(rsa_key: rsa.RSAPrivateKey, pem: bytes, field: str) -> None:
    missing = encrypted_sample(rsa_key)
    del missing[field]
    garbled = encrypted_sample(rsa_key) | {field: "not base64!"}

    with pytest.raises(MalformedPayload, match=f"no {field}"):
        decrypt_resource_data(missing, pem)
    with pytest.raises(MalformedPayload, match=f"{field} is not base64"):
        decrypt_resource_data(garbled, pem)


def test_a_signed_plaintext_that_is_not_a_json_object_is_refused(rsa_key: rsa.RSAPrivateKey, pem: bytes) -> None:
    with pytest.raises(MalformedPayload, match="does not decrypt to JSON"):
        decrypt_resource_data(encrypt_like_graph(b"\xff\xfe not json", rsa_key.public_key()), pem)
    with pytest.raises(MalformedPayload, match="not a JSON object"):
        decrypt_resource_data(encrypt_like_graph(b"[1, 2]", rsa_key.public_key()), pem)
