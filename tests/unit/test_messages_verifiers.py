"""functions.messages.logic.verifiers: each provider's webhook signature, checked against the provider's own
published vectors where there is one (Twilio's documented example and its helper libraries' port and
bodySHA256 vectors; the SendGrid SDK's signed Event Webhook vector), otherwise against keys made here (an RSA
certificate for SNS, P-256 keys for SendGrid). Every way a request can fail to verify is refused."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from functions.messages.logic.verifiers import (
    GraphVerifier,
    SendGridVerifier,
    SnsVerifier,
    TwilioVerifier,
    fetch_sns_certificate,
    graph_validation_token,
    sign_sendgrid,
    twilio_signature,
)
from shared import clock
from shared.errors import ConfigurationError, DependencyFailure, Unauthenticated
from shared.secrets import TenantSecrets
from shared.webhooks import VerifiedWebhook, WebhookRejected, receive
from tests.fakes import FakeAuditLog, FakeReplayGuard, FakeSink, keyring

# ---- Amazon SNS -------------------------------------------------------------------------------------------

TOPIC = "arn:aws:sns:us-west-2:123456789012:ses-events"
OTHER_TOPIC = "arn:aws:sns:us-west-2:123456789012:someone-else"
CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
SNS_AT = datetime(2026, 11, 27, 9, 30, 0, 123000, tzinfo=UTC)
MESSAGE_ID = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
SNS_SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
    "UnsubscribeConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
}


def _certificate(key: rsa.RSAPrivateKey, *, not_after: datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(SNS_AT - timedelta(days=30))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


class SnsWorld:
    """An SNS signing key and its certificate, served at CERT_URL by a fake fetcher that records every fetch."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.pem = _certificate(key, not_after=SNS_AT + timedelta(days=300))
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url != CERT_URL:
            raise OSError("not found")
        return self.pem

    def verifier(self) -> SnsVerifier:
        return SnsVerifier(fetch_certificate=self.fetch)

    def message(self, kind: str = "Notification", *, version: str = "1", **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "Type": kind,
            "MessageId": MESSAGE_ID,
            "TopicArn": TOPIC,
            "Message": '{"eventType":"Delivery","mail":{"messageId":"0100018c-abc"}}',
            "Timestamp": "2026-11-27T09:30:00.123Z",
            "SignatureVersion": version,
            "SigningCertURL": CERT_URL,
        }
        if kind == "Notification":
            message["Subject"] = "Amazon SES Email Event Notification"
            message["UnsubscribeURL"] = "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
        else:
            message["Token"] = "2336412f37fb687f5d51e6e241d164b0533302ec696efc8f113cd2252ce8a925"
            message["Message"] = f"You have chosen to subscribe to the topic {TOPIC}."
            message["SubscribeURL"] = (
                f"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f"
            )
        message.update(fields)
        return message

    def sign(self, message: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
        # The string to sign exactly as AWS documents it: "<name>\n<value>\n" per signed field that is present.
        text = "".join(f"{n}\n{message[n]}\n" for n in SNS_SIGNED[message["Type"]] if n in message)
        algorithm = hashes.SHA256() if message["SignatureVersion"] == "2" else hashes.SHA1()
        signature = (key or self.key).sign(text.encode(), padding.PKCS1v15(), algorithm)
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def verify(self, message: dict[str, Any], *, headers: dict[str, str] | None = None) -> VerifiedWebhook:
        return self.verifier().verify(
            body=json.dumps(message).encode(), headers=headers or {}, secrets=[TOPIC.encode()], now=SNS_AT
        )


@pytest.fixture(scope="module")
def _sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def sns(_sns_key: rsa.RSAPrivateKey) -> SnsWorld:
    return SnsWorld(_sns_key)


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_sns_messages_of_every_type_and_signature_version_verify(sns: SnsWorld, kind: str, version: str) -> None:
    verified = sns.verify(sns.sign(sns.message(kind, version=version)))

    assert verified == VerifiedWebhook(event_id=MESSAGE_ID, signed_at=SNS_AT)
    assert sns.fetched == [CERT_URL]


def test_an_sns_notification_without_a_subject_signs_no_subject_line(sns: SnsWorld) -> None:
    message = sns.message()
    del message["Subject"]

    assert sns.verify(sns.sign(message)).event_id == MESSAGE_ID


def test_an_sns_message_verifies_with_any_held_topic_and_with_matching_sns_headers(sns: SnsWorld) -> None:
    body = json.dumps(sns.sign(sns.message())).encode()
    headers = {"x-amz-sns-message-type": "Notification", "x-amz-sns-topic-arn": TOPIC}

    verified = sns.verifier().verify(
        body=body, headers=headers, secrets=[OTHER_TOPIC.encode(), TOPIC.encode()], now=SNS_AT + timedelta(minutes=59)
    )

    assert verified.event_id == MESSAGE_ID


def test_the_china_partition_pins_amazonaws_com_cn(sns: SnsWorld) -> None:
    topic = "arn:aws-cn:sns:cn-north-1:123456789012:ses-events"
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem"
    message = sns.sign(sns.message(TopicArn=topic, SigningCertURL=url))
    verifier = SnsVerifier(fetch_certificate=lambda _: sns.pem)

    verified = verifier.verify(body=json.dumps(message).encode(), headers={}, secrets=[topic.encode()], now=SNS_AT)

    assert verified.event_id == MESSAGE_ID


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"SigningCertURL": "https://sns.us-west-2.amazonaws.com.evil.example/cert.pem"}, "SigningCertURL"),
        ({"SigningCertURL": "https://evil.example/SimpleNotificationService-0.pem"}, "SigningCertURL"),
        ({"SigningCertURL": "https://sns.us-west-2.evil.amazonaws.com/cert.pem"}, "SigningCertURL"),
        ({"SigningCertURL": "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-0.pem"}, "SigningCertURL"),
        ({"SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0.txt"}, "SigningCertURL"),
        ({"SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem"}, "region"),
        ({"SigningCertURL": "https://user@sns.us-west-2.amazonaws.com/SimpleNotificationService-0.pem"}, "SigningCert"),
        ({"SigningCertURL": "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-0.pem"}, "SigningCert"),
        ({"SigningCertURL": "https://sns.us-west-2.amazonaws.com.cn/SimpleNotificationService-0.pem"}, "SigningCert"),
        ({"TopicArn": OTHER_TOPIC}, "not one of the tenant's topics"),
        ({"Timestamp": "2026-11-27T08:30:00.000Z"}, "too old"),
        ({"Timestamp": "2026-11-27T10:31:00.000Z"}, "in the future"),
        ({"Timestamp": "yesterday"}, "malformed SNS Timestamp"),
        ({"Timestamp": "2026-11-27T09:30:00"}, "without a time zone"),
        ({"SignatureVersion": "3"}, "unsupported SignatureVersion"),
        ({"MessageId": "not-a-uuid"}, "malformed MessageId"),
        ({"Type": "Something"}, "not an SNS message type"),
        ({"Message": 42}, "Message missing or not a string"),
    ],
)
def test_sns_refusals_before_any_signature_check(sns: SnsWorld, change: dict[str, Any], reason: str) -> None:
    message = sns.sign({**sns.message(), **change}) if "Type" not in change else {**sns.message(), **change}

    with pytest.raises(WebhookRejected, match=reason):
        sns.verify(message)
    assert sns.fetched == []  # refused without reaching for a certificate


def test_an_sns_message_with_a_tampered_field_does_not_verify(sns: SnsWorld) -> None:
    message = sns.sign(sns.message())
    message["Message"] = message["Message"].replace("Delivery", "Bounce")

    with pytest.raises(WebhookRejected, match="does not verify"):
        sns.verify(message)


def test_an_sns_message_with_an_added_subject_does_not_verify(sns: SnsWorld) -> None:
    message = sns.message()
    del message["Subject"]
    signed = {**sns.sign(message), "Subject": "injected"}

    with pytest.raises(WebhookRejected, match="does not verify"):
        sns.verify(signed)


def test_an_sns_message_signed_by_another_key_does_not_verify(sns: SnsWorld) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(WebhookRejected, match="does not verify"):
        sns.verify(sns.sign(sns.message(version="2"), key=other))


def test_a_v1_signature_presented_as_v2_does_not_verify(sns: SnsWorld) -> None:
    message = {**sns.sign(sns.message(version="1")), "SignatureVersion": "2"}

    with pytest.raises(WebhookRejected, match="does not verify"):
        sns.verify(message)


@pytest.mark.parametrize(("signature", "reason"), [("%%%not base64%%%", "not base64"), ("", "missing Signature")])
def test_an_sns_signature_that_is_not_base64_is_refused(sns: SnsWorld, signature: str, reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        sns.verify({**sns.sign(sns.message()), "Signature": signature})


@pytest.mark.parametrize(
    "headers",
    [{"x-amz-sns-message-type": "SubscriptionConfirmation"}, {"x-amz-sns-topic-arn": OTHER_TOPIC}],
)
def test_sns_headers_that_contradict_the_body_are_refused(sns: SnsWorld, headers: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected, match="does not match the body"):
        sns.verify(sns.sign(sns.message()), headers=headers)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b"[" * 100000])
def test_an_sns_body_that_is_not_a_json_object_is_refused(sns: SnsWorld, body: bytes) -> None:
    with pytest.raises(WebhookRejected, match="JSON"):
        sns.verifier().verify(body=body, headers={}, secrets=[TOPIC.encode()], now=SNS_AT)


def test_an_expired_signing_certificate_is_refused(sns: SnsWorld) -> None:
    sns.pem = _certificate(sns.key, not_after=SNS_AT - timedelta(seconds=1))

    with pytest.raises(WebhookRejected, match="not valid now"):
        sns.verify(sns.sign(sns.message()))


def test_a_signing_certificate_that_is_not_pem_is_refused(sns: SnsWorld) -> None:
    sns.pem = b"<html>not a certificate</html>"

    with pytest.raises(WebhookRejected, match="not a PEM certificate"):
        sns.verify(sns.sign(sns.message()))


def test_a_certificate_that_cannot_be_fetched_is_a_dependency_failure_so_sns_retries(sns: SnsWorld) -> None:
    def unreachable(url: str) -> bytes:
        raise TimeoutError("timed out")

    verifier = SnsVerifier(fetch_certificate=unreachable)

    with pytest.raises(DependencyFailure):
        verifier.verify(
            body=json.dumps(sns.sign(sns.message())).encode(), headers={}, secrets=[TOPIC.encode()], now=SNS_AT
        )


@pytest.mark.parametrize("url", ["http://sns.us-west-2.amazonaws.com/x.pem", "file:///etc/passwd", "ftp://h/x.pem"])
def test_the_default_certificate_fetcher_refuses_anything_but_https_without_connecting(url: str) -> None:
    with pytest.raises(ValueError, match="https only"):
        fetch_sns_certificate(url)


def test_the_tolerance_is_an_hour_by_default_and_can_be_set(sns: SnsWorld) -> None:
    message = sns.sign(sns.message(Timestamp="2026-11-27T09:00:00.000Z"))
    body = json.dumps(message).encode()
    SnsVerifier(fetch_certificate=sns.fetch).verify(body=body, headers={}, secrets=[TOPIC.encode()], now=SNS_AT)

    with pytest.raises(WebhookRejected, match="too old"):
        SnsVerifier(fetch_certificate=sns.fetch, tolerance=timedelta(minutes=15)).verify(
            body=body, headers={}, secrets=[TOPIC.encode()], now=SNS_AT
        )


def test_the_confirmation_url_of_a_subscription_confirmation(sns: SnsWorld) -> None:
    message = sns.sign(sns.message("SubscriptionConfirmation"))
    body = json.dumps(message).encode()
    sns.verify(message)

    assert SnsVerifier.confirmation_url(body) == message["SubscribeURL"]


@pytest.mark.parametrize(
    "change",
    [
        {"SubscribeURL": "https://evil.example/?Action=ConfirmSubscription"},
        {"SubscribeURL": "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"},
        {"SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"},
        {"SubscribeURL": "https://sns.us-west-2.amazonaws.com.evil.example/?Action=ConfirmSubscription"},
        {"SubscribeURL": "https://x@sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"},
        {"SubscribeURL": 7},
        {"TopicArn": "not an arn"},
        {"Type": "UnsubscribeConfirmation"},
    ],
)
def test_no_confirmation_url_unless_it_is_sns_over_https_in_the_topics_region(
    sns: SnsWorld, change: dict[str, Any]
) -> None:
    body = json.dumps({**sns.message("SubscriptionConfirmation"), **change}).encode()

    assert SnsVerifier.confirmation_url(body) is None


def test_a_notification_or_garbage_has_no_confirmation_url(sns: SnsWorld) -> None:
    assert SnsVerifier.confirmation_url(json.dumps(sns.message()).encode()) is None
    assert SnsVerifier.confirmation_url(b"\xff not json") is None


# ---- Twilio -----------------------------------------------------------------------------------------------

# Twilio's documented example ("Webhooks security"; the RequestValidator tests of twilio-python, -php, -csharp):
# auth token 12345, this URL and these POST parameters give this signature.
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TWILIO_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
# twilio-php RequestValidatorTest: the JSON body, its SHA-256, and the signature of TWILIO_URL&bodySHA256=<hash>.
TWILIO_JSON = b'{"property": "value", "boolean": true}'
TWILIO_JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
TWILIO_JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="
TWILIO_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
MESSAGE_SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"


def twilio_verify(
    body: bytes,
    signature: str,
    *,
    urls: tuple[str, ...] = (TWILIO_URL,),
    content_type: str = FORM,
    secrets: tuple[bytes, ...] = (TWILIO_TOKEN.encode(),),
    extra: dict[str, str] | None = None,
) -> VerifiedWebhook:
    headers = {"x-twilio-signature": signature, "content-type": content_type, **(extra or {})}
    return TwilioVerifier(urls).verify(body=body, headers=headers, secrets=list(secrets), now=TWILIO_NOW)


def test_our_twilio_signature_matches_twilios_documented_example() -> None:
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_SIGNATURE


def test_twilios_documented_example_verifies_as_a_form_post() -> None:
    body = urlencode(TWILIO_PARAMS).encode()

    verified = twilio_verify(body, TWILIO_SIGNATURE)

    # Not a Messaging webhook (no MessageSid): the request id falls back to the body's SHA-256.
    assert verified == VerifiedWebhook(event_id=hashlib.sha256(body).hexdigest(), signed_at=TWILIO_NOW)


def test_repeated_parameters_are_signed_once_per_distinct_value_in_order() -> None:
    # twilio-php's vector for Digits=[5678, 1234, 1234].
    body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234"

    twilio_verify(body, "IK+Dwps556ElfBT0I3Rgjkr1wJU=")


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # Twilio signed the URL with :443 added; the URL we hold has no port (twilio-php testValidateAddsPortHttps).
        (TWILIO_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        # ... with :80 on http (testValidateAddsPortHttp).
        (TWILIO_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        # Twilio signed the URL without a port; the URL we hold has one (testValidateRemovesPortHttps).
        (TWILIO_URL.replace(".com", ".com:1234"), TWILIO_SIGNATURE),
        # Basic-auth credentials in the URL are signed as written, with or without :443 (testBuildUrlCreds...).
        ("https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", "CukzLTc1tT5dXEDIHm/tKBanW10="),
        ("https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="),
    ],
)
def test_the_port_variants_twilios_validators_accept(url: str, signature: str) -> None:
    twilio_verify(urlencode(TWILIO_PARAMS).encode(), signature, urls=(url,))


def test_a_json_body_verifies_through_the_body_sha256_in_the_url() -> None:
    assert hashlib.sha256(TWILIO_JSON).hexdigest() == TWILIO_JSON_HASH
    url_with_hash = f"{TWILIO_URL}&bodySHA256={TWILIO_JSON_HASH}"

    verified = twilio_verify(TWILIO_JSON, TWILIO_JSON_SIGNATURE, urls=(url_with_hash,), content_type="application/json")

    assert verified.event_id == TWILIO_JSON_HASH


def test_a_json_body_verifies_against_the_configured_url_twilio_appended_body_sha256_to() -> None:
    twilio_verify(TWILIO_JSON, TWILIO_JSON_SIGNATURE, content_type="application/json; charset=utf-8")


def test_a_json_body_that_does_not_match_the_body_sha256_is_refused() -> None:
    url_with_hash = f"{TWILIO_URL}&bodySHA256={TWILIO_JSON_HASH}"

    with pytest.raises(WebhookRejected, match="bodySHA256 does not match the body"):
        twilio_verify(
            TWILIO_JSON.replace(b"true", b"false"),
            TWILIO_JSON_SIGNATURE,
            urls=(url_with_hash,),
            content_type="application/json",
        )


def test_a_tampered_json_body_against_the_configured_url_is_refused() -> None:
    with pytest.raises(WebhookRejected, match="no signature matches"):
        twilio_verify(TWILIO_JSON + b" ", TWILIO_JSON_SIGNATURE, content_type="application/json")


def status_callback(**fields: str) -> dict[str, str]:
    return {
        "AccountSid": "AC2f0e8ae6ade43cb3c0ce4525424e404f",
        "From": "+15017122661",
        "To": "+15558675310",
        "MessageSid": MESSAGE_SID,
        "SmsSid": MESSAGE_SID,
        "SmsStatus": "delivered",
        "MessageStatus": "delivered",
        "ApiVersion": "2010-04-01",
        **fields,
    }


URL = "https://api.example.com/v1/webhooks/twilio/acme"


@pytest.mark.parametrize(
    ("params", "event_id"),
    [
        (status_callback(), f"{MESSAGE_SID}-delivered"),
        (
            status_callback(MessageStatus="undelivered", SmsStatus="undelivered", ErrorCode="30003"),
            f"{MESSAGE_SID}-undelivered-30003",
        ),
        (
            {"MessageSid": MESSAGE_SID, "SmsStatus": "received", "Body": "Yes, Tuesday works", "From": "+1555"},
            MESSAGE_SID,
        ),
    ],
)
def test_messaging_webhooks_are_identified_by_message_sid_status_and_error(
    params: dict[str, str], event_id: str
) -> None:
    body = urlencode(params).encode()

    verified = twilio_verify(body, twilio_signature("tok", URL, params), urls=(URL,), secrets=(b"tok",))

    assert verified == VerifiedWebhook(event_id=event_id, signed_at=TWILIO_NOW)


def test_form_values_are_signed_decoded() -> None:
    params = status_callback(Body="Ça marche & à bientôt + merci")
    body = urlencode(params).encode()

    twilio_verify(body, twilio_signature("tok", URL, params), urls=(URL,), secrets=(b"tok",))


def test_any_configured_url_and_any_held_token_may_match() -> None:
    params = status_callback()
    signature = twilio_signature("new-token", URL, params)

    verified = twilio_verify(
        urlencode(params).encode(),
        signature,
        urls=("https://abc123.execute-api.eu-west-1.amazonaws.com/prod/v1/webhooks/twilio/acme", URL),
        secrets=(b"old-token", b"new-token"),
    )

    assert verified.event_id == f"{MESSAGE_SID}-delivered"


@pytest.mark.parametrize(
    ("signature", "body", "urls", "reason"),
    [
        ("", urlencode(TWILIO_PARAMS).encode(), (TWILIO_URL,), "missing X-Twilio-Signature"),
        ("not base64!", urlencode(TWILIO_PARAMS).encode(), (TWILIO_URL,), "not base64"),
        (TWILIO_SIGNATURE, urlencode({**TWILIO_PARAMS, "Digits": "9999"}).encode(), (TWILIO_URL,), "no signature"),
        (TWILIO_SIGNATURE, urlencode({**TWILIO_PARAMS, "Extra": ""}).encode(), (TWILIO_URL,), "no signature"),
        (TWILIO_SIGNATURE, urlencode(TWILIO_PARAMS).encode(), ("https://mycompany.com/myapp.php",), "no signature"),
        (TWILIO_SIGNATURE, urlencode(TWILIO_PARAMS).encode(), ("https://evil.example/myapp.php?foo=1&bar=2",), "no"),
        (TWILIO_SIGNATURE, b"\xff\xfe=\xff", (TWILIO_URL,), "not UTF-8 form data"),
    ],
)
def test_twilio_refusals(signature: str, body: bytes, urls: tuple[str, ...], reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        twilio_verify(body, signature, urls=urls)


def test_a_twilio_signature_under_another_token_is_refused() -> None:
    with pytest.raises(WebhookRejected, match="no signature matches"):
        twilio_verify(urlencode(TWILIO_PARAMS).encode(), TWILIO_SIGNATURE, secrets=(b"54321",))


def test_a_request_signed_with_a_webhooks_rule_shared_key_is_refused() -> None:
    settings = {"x-twilio-webhooks-signature-settings": "key=k1,algorithm=HMAC_SHA256"}

    with pytest.raises(WebhookRejected, match="Webhooks Rule"):
        twilio_verify(urlencode(TWILIO_PARAMS).encode(), TWILIO_SIGNATURE, extra=settings)


@pytest.mark.parametrize("urls", [(), "https://api.example.com/x", ("ftp://api.example.com/x",)])
def test_twilio_needs_http_urls(urls: Any) -> None:
    with pytest.raises(ConfigurationError):
        TwilioVerifier(urls)


# ---- SendGrid ---------------------------------------------------------------------------------------------

# The SendGrid SDK's signed Event Webhook vector (sendgrid-python test/unit/test_eventwebhook.py): the account's
# verification key as SendGrid shows it, a signature and timestamp as SendGrid sent them, and the exact body.
SG_PUBLIC_KEY = base64.b64decode(
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_OTHER_KEY = base64.b64decode(
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SG_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SG_TIMESTAMP = "1600112502"
SG_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)
SG_AT = datetime.fromtimestamp(int(SG_TIMESTAMP), tz=UTC)


def sg_headers(signature: str = SG_SIGNATURE, timestamp: str = SG_TIMESTAMP) -> dict[str, str]:
    return {
        "x-twilio-email-event-webhook-signature": signature,
        "x-twilio-email-event-webhook-timestamp": timestamp,
        "content-type": "application/json",
    }


def der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_the_sendgrid_sdks_signed_event_webhook_vector_verifies() -> None:
    verified = SendGridVerifier().verify(
        body=SG_BODY, headers=sg_headers(), secrets=[SG_PUBLIC_KEY], now=SG_AT + timedelta(seconds=30)
    )

    assert verified == VerifiedWebhook(event_id=hashlib.sha256(SG_BODY).hexdigest(), signed_at=SG_AT)


def test_our_sendgrid_signature_verifies_under_any_held_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = b'[{"event":"delivered","sg_event_id":"abc"}]'
    headers = sg_headers(sign_sendgrid(key, SG_TIMESTAMP, body))

    verified = SendGridVerifier().verify(
        body=body, headers=headers, secrets=[SG_PUBLIC_KEY, b"\x00junk", der(key)], now=SG_AT
    )

    assert verified.signed_at == SG_AT


@pytest.mark.parametrize(
    ("headers", "body", "secrets", "reason"),
    [
        (sg_headers(signature=""), SG_BODY, [SG_PUBLIC_KEY], "missing"),
        ({"x-twilio-email-event-webhook-signature": SG_SIGNATURE}, SG_BODY, [SG_PUBLIC_KEY], "missing"),
        (sg_headers(signature="@@not base64@@"), SG_BODY, [SG_PUBLIC_KEY], "not base64"),
        (sg_headers(signature=base64.b64encode(b"\x30\x02junk").decode()), SG_BODY, [SG_PUBLIC_KEY], "no signature"),
        (sg_headers(), SG_BODY, [SG_OTHER_KEY], "no signature matches"),
        (sg_headers(), SG_BODY.replace(b"dropped", b"delivered"), [SG_PUBLIC_KEY], "no signature matches"),
        (sg_headers(), SG_BODY.rstrip(), [SG_PUBLIC_KEY], "no signature matches"),
        (sg_headers(timestamp="1600112503"), SG_BODY, [SG_PUBLIC_KEY], "no signature matches"),
        (sg_headers(timestamp="timestamp"), SG_BODY, [SG_PUBLIC_KEY], "malformed"),
        (sg_headers(), SG_BODY, [b"\x07" * 32], "no held key is a P-256 public key"),
    ],
)
def test_sendgrid_refusals(headers: dict[str, str], body: bytes, secrets: list[bytes], reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        SendGridVerifier().verify(body=body, headers=headers, secrets=secrets, now=SG_AT)


def test_a_key_on_another_curve_is_not_used() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    signature = base64.b64encode(key.sign(SG_TIMESTAMP.encode() + SG_BODY, ec.ECDSA(hashes.SHA256()))).decode()

    with pytest.raises(WebhookRejected, match="no held key is a P-256 public key"):
        SendGridVerifier().verify(body=SG_BODY, headers=sg_headers(signature), secrets=[der(key)], now=SG_AT)


@pytest.mark.parametrize(("offset", "reason"), [(-601, "in the future"), (601, "too old")])
def test_the_sendgrid_window_is_ten_minutes_both_ways(offset: int, reason: str) -> None:
    verifier = SendGridVerifier()
    for inside in (-600, 600):
        verifier.verify(
            body=SG_BODY, headers=sg_headers(), secrets=[SG_PUBLIC_KEY], now=SG_AT + timedelta(seconds=inside)
        )

    with pytest.raises(WebhookRejected, match=reason):
        verifier.verify(
            body=SG_BODY, headers=sg_headers(), secrets=[SG_PUBLIC_KEY], now=SG_AT + timedelta(seconds=offset)
        )


def test_signed_inbound_parse_uses_the_same_scheme_under_its_own_provider() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = (
        b'--xYzZY\r\nContent-Disposition: form-data; name="to"\r\n\r\nrecruiting@parse.example.com\r\n'
        b'--xYzZY\r\nContent-Disposition: form-data; name="subject"\r\n\r\nRe: Interview\r\n--xYzZY--\r\n'
    )
    headers = sg_headers(sign_sendgrid(key, 1_800_000_000, body), "1800000000")
    headers["content-type"] = "multipart/form-data; boundary=xYzZY"
    verifier = SendGridVerifier(provider="sendgrid-inbound")
    at = datetime.fromtimestamp(1_800_000_000, tz=UTC)

    verified = verifier.verify(body=body, headers=headers, secrets=[der(key)], now=at)

    assert verifier.provider == "sendgrid-inbound"
    assert verified == VerifiedWebhook(event_id=hashlib.sha256(body).hexdigest(), signed_at=at)
    with pytest.raises(WebhookRejected, match="no signature matches"):
        verifier.verify(body=body.replace(b"Interview", b"Offer"), headers=headers, secrets=[der(key)], now=at)
    with pytest.raises(WebhookRejected, match="missing"):  # an unsigned Parse POST (no policy attached)
        verifier.verify(body=body, headers={"content-type": headers["content-type"]}, secrets=[der(key)], now=at)


def test_sendgrid_providers_are_the_two_signed_ones() -> None:
    assert SendGridVerifier().provider == "sendgrid"
    with pytest.raises(ConfigurationError):
        SendGridVerifier(provider="sendgrid-basic")


# ---- Microsoft Graph --------------------------------------------------------------------------------------

CLIENT_STATE = "secretClientValue-7c4f3a"
GRAPH_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def graph_body(*states: str | None) -> bytes:
    notifications = []
    for index, state in enumerate(states or (CLIENT_STATE,)):
        notification: dict[str, Any] = {
            "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
            "subscriptionExpirationDateTime": "2026-11-28T11:00:00.0000000Z",
            "changeType": "created",
            "resource": f"chats('19:abc@thread.v2')/messages('{1700000000000 + index}')",
            "resourceData": {"id": str(1700000000000 + index), "@odata.type": "#Microsoft.Graph.chatMessage"},
            "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
        }
        if state is not None:
            notification["clientState"] = state
        notifications.append(notification)
    return json.dumps({"value": notifications}).encode()


def graph_verify(body: bytes, secrets: tuple[bytes, ...] = (CLIENT_STATE.encode(),)) -> VerifiedWebhook:
    return GraphVerifier().verify(
        body=body, headers={"content-type": "application/json"}, secrets=list(secrets), now=GRAPH_NOW
    )


def test_graph_notifications_carrying_the_client_state_verify() -> None:
    body = graph_body(CLIENT_STATE, CLIENT_STATE)

    assert graph_verify(body) == VerifiedWebhook(event_id=hashlib.sha256(body).hexdigest(), signed_at=GRAPH_NOW)


def test_graph_accepts_any_held_client_state_while_subscriptions_are_renewed() -> None:
    graph_verify(graph_body("old-state", CLIENT_STATE), secrets=(b"old-state", CLIENT_STATE.encode()))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (graph_body(CLIENT_STATE, "guessed"), "matches no held secret"),
        (graph_body("secretClientValue-7c4f3"), "matches no held secret"),
        (graph_body(CLIENT_STATE, None), "has no clientState"),
        (graph_body(""), "has no clientState"),
        (json.dumps({"value": []}).encode(), "no notifications"),
        (json.dumps({"value": ["x"]}).encode(), "has no clientState"),
        (json.dumps({"value": {"clientState": CLIENT_STATE}}).encode(), "no notifications"),
        (json.dumps([{"clientState": CLIENT_STATE}]).encode(), "not a JSON object"),
        (b"", "not JSON"),
    ],
)
def test_graph_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        graph_verify(body)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"queryStringParameters": {"validationToken": "opaqueTokenCreatedByMicrosoftGraph"}},
            "opaqueTokenCreatedByMicrosoftGraph",
        ),
        # Spaces and symbols are the token's own (API Gateway has already URL-decoded it): echoed as they are.
        ({"queryStringParameters": {"validationToken": "Validation: Token+Abc/1="}}, "Validation: Token+Abc/1="),
        ({"queryStringParameters": None}, None),
        ({"queryStringParameters": {"other": "x"}}, None),
        ({"queryStringParameters": {"validationToken": ""}}, None),
        ({"queryStringParameters": {"validationToken": "line\nbreak"}}, None),
        ({"queryStringParameters": {"validationToken": "x" * 4097}}, None),
        ({}, None),
    ],
)
def test_graph_validation_token(event: dict[str, Any], expected: str | None) -> None:
    assert graph_validation_token(event) == expected


# ---- through shared.webhooks.receive ----------------------------------------------------------------------


class Gateway:
    """`receive` with fakes, for one verifier: the tenant `acme` holds `secret` as `webhook/<provider>`."""

    def __init__(self, provider: str, secret: bytes) -> None:
        self.documents = {f"ats-dev/tenants/acme/webhook/{provider}": keyring("1", {"1": secret})}
        self.secrets = TenantSecrets("ats-dev/tenants/", fetch=self.documents.__getitem__, max_age=0)
        self.replay, self.sink, self.audit = FakeReplayGuard(), FakeSink(), FakeAuditLog()

    def receive(self, verifier: Any, tenant: str, body: bytes, headers: dict[str, str]) -> Any:
        event = {
            "body": body.decode(),
            "headers": headers,
            "pathParameters": {"tenant": tenant},
            "requestContext": {"requestId": "req-1", "identity": {"sourceIp": "198.51.100.7"}},
        }
        return receive(
            event, verifier=verifier, secrets=self.secrets, replay=self.replay, sink=self.sink, audit=self.audit
        )


@pytest.fixture
def _frozen_at_the_sendgrid_vector() -> Iterator[None]:
    clock.freeze(SG_AT + timedelta(seconds=5))
    yield
    clock.freeze(None)


@pytest.mark.usefixtures("_frozen_at_the_sendgrid_vector")
def test_receive_stores_a_signed_sendgrid_batch_once_and_refuses_it_for_another_tenant() -> None:
    gateway = Gateway("sendgrid", SG_PUBLIC_KEY)

    first = gateway.receive(SendGridVerifier(), "acme", SG_BODY, sg_headers())
    again = gateway.receive(SendGridVerifier(), "acme", SG_BODY, sg_headers())
    with pytest.raises(Unauthenticated):
        gateway.receive(SendGridVerifier(), "globex", SG_BODY, sg_headers())  # no such tenant secret: decoy key

    assert (first.status, again.status, again.duplicate) == (202, 200, True)
    [stored] = gateway.sink.stored
    assert (stored.provider, stored.tenant, stored.body) == ("sendgrid", "acme", SG_BODY)
    [refused] = gateway.audit.entries
    assert refused.reason == "no such tenant"


@pytest.mark.usefixtures("_frozen_at_the_sendgrid_vector")
def test_receive_with_twilio_deduplicates_a_retried_status_callback() -> None:
    gateway = Gateway("twilio", b"tok")
    params = status_callback()
    headers = {"x-twilio-signature": twilio_signature("tok", URL, params), "content-type": FORM}
    body = urlencode(params).encode()

    receipts = [gateway.receive(TwilioVerifier([URL]), "acme", body, headers) for _ in range(2)]

    assert [(r.status, r.event_id) for r in receipts] == [
        (202, f"{MESSAGE_SID}-delivered"),
        (200, f"{MESSAGE_SID}-delivered"),
    ]
    assert len(gateway.sink.stored) == 1
