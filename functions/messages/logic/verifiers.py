"""Webhook verifiers of the messages domain: one `shared.webhooks.WebhookVerifier` per provider.

`shared.webhooks.receive` calls `verify()` with the raw body, the headers (lower-case names) and every held
version of the tenant secret `webhook/<provider>`, before anything is parsed or stored. Each verifier refuses
with `WebhookRejected(reason)` and vouches with `VerifiedWebhook(event_id, signed_at)`, where `event_id` is the
*request's* dedup id (`^[A-Za-z0-9_:-]{1,200}$`): replays of one delivery get the same id.

What each provider signs, as its own documentation says (checked 2026-11-27):

- Amazon SNS (`ses-sns`), "Verifying the signatures of Amazon SNS messages" and "HTTP/HTTPS notification JSON
  format" (docs.aws.amazon.com/sns/latest/dg/): the string to sign is `<name>\\n<value>\\n` for, in this order,
  Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type of a Notification, and Message,
  MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type of a (Un)SubscriptionConfirmation; SignatureVersion
  1 is SHA1withRSA, 2 is SHA256withRSA, with the key of the certificate at SigningCertURL. AWS asks to fetch
  that certificate over HTTPS only from SNS and to reject unexpected TopicArns: the URL is pinned to
  `https://sns.<topic's region>.amazonaws.com[.cn]/....pem` and the topic must be one the tenant holds.
- Twilio (`twilio`), "Webhooks security" (twilio.com/docs/usage/webhooks/webhooks-security) and its helper
  libraries' RequestValidator: `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, full URL + every POST
  parameter name+value, sorted by name (case-sensitive), each name's distinct values sorted)). The validators
  also try the URL with the default port added (`:443`/`:80`) or with its port removed. JSON bodies carry
  `bodySHA256` (hex SHA-256 of the raw body) in the URL query and the signature covers the URL alone.
- SendGrid Event Webhook (`sendgrid`), "Getting Started with the Event Webhook Security Features": ECDSA P-256
  with SHA-256 over `<X-Twilio-Email-Event-Webhook-Timestamp><raw body>`, the DER signature base64 in
  `X-Twilio-Email-Event-Webhook-Signature`; the verification key is a base64 DER SubjectPublicKeyInfo.
- SendGrid Inbound Parse (`sendgrid-inbound`): SendGrid *does* sign Inbound Parse requests today, when a
  webhook security policy with `"signature": {"enabled": true}` (POST /v3/user/webhooks/security/policies) is
  attached to the Parse setting ("Securing your Inbound Parse Webhooks",
  twilio.com/docs/sendgrid/for-developers/parsing-email/securing-your-parse-webhooks). It is the same ECDSA
  scheme and the same two headers as the Event Webhook (the names keep "Event-Webhook"), over the raw
  multipart body; the policy's `signature.public_key` is the tenant secret. So Inbound Parse is verified with
  `SendGridVerifier(provider="sendgrid-inbound")`, not with Basic-auth credentials in the parse URL: a signature
  binds the body and a timestamp, a URL password binds neither and sits in SendGrid's settings and our logs.
- Microsoft Graph (`graph`), "Set up notifications for changes in resource data" (learn.microsoft.com/graph/
  change-notifications-delivery-webhooks): notifications are not signed; each carries the `clientState` the
  subscription was created with, which the receiver must compare. Creating a subscription first POSTs
  `?validationToken=<token>` with no notification, to be echoed 200 text/plain within 10 seconds.

An unknown tenant is verified against a throwaway secret by `receive`; every verifier here spends the same
work on it as on a wrong signature (SendGrid verifies against a decoy key when no held key loads).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from shared.errors import ConfigurationError, DependencyFailure
from shared.webhooks import VerifiedWebhook, WebhookRejected

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey

_REQUEST_ID = re.compile(r"^[A-Za-z0-9_:-]{1,200}$")  # shared.webhooks' event id rule

# ---- Amazon SNS -------------------------------------------------------------------------------------------

_SNS_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_SNS_OPTIONAL = frozenset({"Subject"})
_SNS_TOPIC = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):sns:([a-z]{2}(?:-[a-z]+)+-[0-9]):[0-9]{12}:[A-Za-z0-9_.-]{1,256}$"
)
_SNS_HOST = re.compile(r"^sns\.([a-z]{2}(?:-[a-z]+)+-[0-9])\.amazonaws\.com(\.cn)?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CERTIFICATE_TIMEOUT_SECONDS = 5
_CERTIFICATE_MAX_BYTES = 64 * 1024


@lru_cache(maxsize=32)
def fetch_sns_certificate(url: str) -> bytes:
    """The PEM at an SNS `SigningCertURL`, over HTTPS only (certificate-checked, no redirects, 5 s timeout),
    cached per process by URL: SNS rotates its signing certificate rarely and names it in every message.

    Callers pin the host first (`SnsVerifier`); this only refuses anything that is not https.
    """
    import http.client
    import ssl

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("the SNS signing certificate is fetched over https only")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, timeout=_CERTIFICATE_TIMEOUT_SECONDS, context=ssl.create_default_context()
    )
    try:
        connection.request("GET", path, headers={"Accept": "application/x-pem-file"})
        response = connection.getresponse()
        if response.status != 200:
            raise OSError(f"SNS signing certificate answered HTTP {response.status}")
        pem = response.read(_CERTIFICATE_MAX_BYTES + 1)
    finally:
        connection.close()
    if len(pem) > _CERTIFICATE_MAX_BYTES:
        raise ValueError("SNS signing certificate too large")
    return pem


class SnsVerifier:
    """SNS HTTPS deliveries (the topics SES publishes to): Notification, SubscriptionConfirmation and
    UnsubscribeConfirmation, SignatureVersion 1 and 2. The tenant secrets are the topic ARNs it owns.

    The checks run cheapest and most selective first: the topic before any certificate is fetched, so an
    unknown tenant or topic never makes this function reach the network. A certificate that cannot be fetched
    is a DependencyFailure (503, SNS retries), not a forgery.
    """

    provider = "ses-sns"

    def __init__(
        self,
        fetch_certificate: Callable[[str], bytes] | None = None,
        tolerance: timedelta = timedelta(hours=1),
    ) -> None:
        # One hour: SNS keeps the original Timestamp (and signature) on every retry of a delivery, and an
        # HTTP/S delivery policy's retries last at most 3,600 seconds.
        self._fetch: Callable[[str], bytes] = fetch_certificate or fetch_sns_certificate
        self._tolerance = tolerance

    def verify(
        self, *, body: bytes, headers: Mapping[str, str], secrets: Sequence[bytes], now: datetime
    ) -> VerifiedWebhook:
        message = _json_object(body)
        kind = message.get("Type")
        if not isinstance(kind, str) or kind not in _SNS_SIGNED:
            raise WebhookRejected("not an SNS message type that is signed")
        if headers.get("x-amz-sns-message-type", kind) != kind:
            raise WebhookRejected("x-amz-sns-message-type does not match the body")
        signed = _sns_string_to_sign(message, kind)

        message_id = message["MessageId"]
        if not _UUID.match(message_id):
            raise WebhookRejected("malformed MessageId")
        topic = message["TopicArn"]
        if headers.get("x-amz-sns-topic-arn", topic) != topic:
            raise WebhookRejected("x-amz-sns-topic-arn does not match the body")
        if not _any_equal(topic.encode(), secrets):
            raise WebhookRejected("TopicArn is not one of the tenant's topics")
        arn = _SNS_TOPIC.match(topic)
        if arn is None:
            raise WebhookRejected("malformed TopicArn")

        signed_at = _sns_timestamp(message["Timestamp"])
        if signed_at < now - self._tolerance:
            raise WebhookRejected("SNS Timestamp too old")
        if signed_at > now + self._tolerance:
            raise WebhookRejected("SNS Timestamp in the future")

        version = message.get("SignatureVersion")
        if version not in ("1", "2"):
            raise WebhookRejected("unsupported SignatureVersion")
        cert_url = message.get("SigningCertURL", message.get("SigningCertUrl"))
        if not isinstance(cert_url, str) or not _sns_url_ok(cert_url, partition=arn[1], region=arn[2]):
            raise WebhookRejected("SigningCertURL is not an https .pem of SNS in the topic's region")
        signature = _b64(message.get("Signature"), "Signature")

        try:
            pem = self._fetch(cert_url)
        except Exception as error:
            raise DependencyFailure("the SNS signing certificate could not be fetched") from error
        _verify_rsa(pem, signature, signed, sha256=version == "2", now=now)
        return VerifiedWebhook(event_id=message_id, signed_at=signed_at)

    @staticmethod
    def confirmation_url(body: bytes) -> str | None:
        """The SubscribeURL to visit to confirm the subscription, for a SubscriptionConfirmation that `verify`
        (through `receive`) has already verified; None for anything else, and for any URL that is not
        `https://sns.<the topic's region>.amazonaws.com[.cn]/...`: confirming never calls anything but SNS."""
        try:
            message = _json_object(body)
        except WebhookRejected:
            return None
        url, topic = message.get("SubscribeURL"), message.get("TopicArn")
        if message.get("Type") != "SubscriptionConfirmation" or not isinstance(url, str) or not isinstance(topic, str):
            return None
        arn = _SNS_TOPIC.match(topic)
        if arn is None or not _sns_url_ok(url, partition=arn[1], region=arn[2], pem=False):
            return None
        return url


def _sns_string_to_sign(message: Mapping[str, Any], kind: str) -> bytes:
    lines: list[str] = []
    for name in _SNS_SIGNED[kind]:
        value = message.get(name)
        if value is None and name in _SNS_OPTIONAL:
            continue  # Subject is signed only when the message has one
        if not isinstance(value, str):
            raise WebhookRejected(f"SNS field {name} missing or not a string")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


def _sns_timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WebhookRejected("malformed SNS Timestamp") from None
    if moment.tzinfo is None:
        raise WebhookRejected("SNS Timestamp without a time zone")
    return moment.astimezone(UTC)


def _sns_url_ok(url: str, *, partition: str, region: str, pem: bool = True) -> bool:
    """https, no credentials or port, host `sns.<region>.amazonaws.com` (`.com.cn` in the China partition)
    for the region of the topic, and for a certificate a path ending `.pem`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = _SNS_HOST.match(parts.netloc)
    return (
        parts.scheme == "https"
        and port is None
        and host is not None
        and host[1] == region
        and bool(host[2]) == (partition == "aws-cn")
        and (not pem or (parts.path.endswith(".pem") and not parts.query and not parts.fragment))
    )


def _verify_rsa(pem: bytes, signature: bytes, signed: bytes, *, sha256: bool, now: datetime) -> None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise WebhookRejected("the SNS signing certificate is not a PEM certificate") from None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise WebhookRejected("the SNS signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRejected("the SNS signing certificate does not hold an RSA key")
    algorithm: hashes.HashAlgorithm = hashes.SHA256() if sha256 else hashes.SHA1()  # SignatureVersion 1 is SHA1withRSA
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise WebhookRejected("SNS signature does not verify") from None


# ---- Twilio -----------------------------------------------------------------------------------------------

_TWILIO_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_TWILIO_STATUS = re.compile(r"^[a-z_]{1,32}$")
_TWILIO_ERROR = re.compile(r"^[0-9]{1,10}$")
_MAX_FORM_FIELDS = 1000


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """The `X-Twilio-Signature` Twilio sends for a form POST of `params` to `url` (tests, local clients)."""
    return base64.b64encode(_twilio_digest(token.encode(), _twilio_payload(url, params.items()))).decode()


class TwilioVerifier:
    """Twilio Messaging webhooks (status callbacks and inbound messages), signed with the account's auth token
    (the tenant secret; two versions are held while Twilio's secondary token is being promoted).

    `urls` are the URLs Twilio is configured to call for this tenant, exactly as configured (scheme, host,
    path, query): the signature covers the URL and the verifier cannot see it. The handler builds them per
    request from the public base URL(s) of the API and the tenant in the path (behind a custom domain and the
    API Gateway stage URL, both may be listed). Requests signed with a Webhooks Rule's shared key
    (`X-Twilio-Webhooks-Signature-Settings`) are refused: the tenant secret is the auth token.
    """

    provider = "twilio"

    def __init__(self, urls: Sequence[str]) -> None:
        if isinstance(urls, str) or not urls or any(urlsplit(u).scheme not in ("https", "http") for u in urls):
            raise ConfigurationError("TwilioVerifier needs the http(s) URLs Twilio calls")
        self._urls = tuple(urls)

    def verify(
        self, *, body: bytes, headers: Mapping[str, str], secrets: Sequence[bytes], now: datetime
    ) -> VerifiedWebhook:
        if "x-twilio-webhooks-signature-settings" in headers:
            raise WebhookRejected("signed with a Webhooks Rule shared key, not the auth token")
        offered = headers.get("x-twilio-signature", "")
        if not offered:
            raise WebhookRejected("missing X-Twilio-Signature")
        signature = _b64(offered, "X-Twilio-Signature")
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        is_json = media_type == "application/json"
        body_hash = hashlib.sha256(body).hexdigest()
        pairs: list[tuple[str, str]] = [] if is_json else _form_pairs(body)

        payloads: list[bytes] = []
        hash_mismatch = False
        for url in self._urls:
            params: list[tuple[str, str]] = []
            declared = _query_value(url, "bodySHA256")
            if declared is not None:  # JSON: the URL carries the body's hash; the signature covers the URL
                if not hmac.compare_digest(declared.encode(), body_hash.encode()):
                    hash_mismatch = True
                    continue
                signed_url = url
            elif is_json:  # the configured URL: Twilio appended bodySHA256 to it
                signed_url = _append_query(url, "bodySHA256", body_hash)
            else:
                signed_url, params = url, pairs
            payloads.extend(_twilio_payload(variant, params) for variant in _port_variants(signed_url))

        matched = False
        for secret in secrets:
            if not secret:
                continue
            for payload in payloads:
                # Every comparison runs (no early exit), each in constant time.
                matched |= hmac.compare_digest(_twilio_digest(secret, payload), signature)
        if not matched:
            raise WebhookRejected(
                "bodySHA256 does not match the body" if hash_mismatch and not payloads else "no signature matches"
            )
        return VerifiedWebhook(event_id=_twilio_event_id(pairs, body_hash), signed_at=now)


def _twilio_digest(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha1).digest()  # Twilio's scheme is HMAC-SHA1


def _twilio_payload(url: str, pairs: Iterable[tuple[str, str]]) -> bytes:
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    return (url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))).encode()


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError:  # UnicodeDecodeError is one
        raise WebhookRejected("body is not UTF-8 form data") from None


def _query_value(url: str, name: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == name:
            return value
    return None


def _append_query(url: str, name: str, value: str) -> str:
    base, hash_mark, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{name}={value}"
    return joined + hash_mark + fragment


def _port_variants(url: str) -> list[str]:
    """`url` as given, and with the scheme's default port added (no port) or its port removed: Twilio's own
    validators accept both, since the port Twilio signed depends on how the URL was configured."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    prefix = f"{parts.scheme}://"
    if parts.scheme not in ("https", "http") or not url.lower().startswith(prefix) or not parts.hostname:
        return [url]
    rest = url[len(prefix) + len(parts.netloc) :]
    if port is None:
        netloc = f"{parts.netloc}:{443 if parts.scheme == 'https' else 80}"
    else:
        netloc = parts.netloc[: -len(f":{port}")] if parts.netloc.endswith(f":{port}") else parts.netloc
    return [url, url[: len(prefix)] + netloc + rest]


def _twilio_event_id(pairs: Sequence[tuple[str, str]], body_hash: str) -> str:
    """`<MessageSid>-<MessageStatus>[-<ErrorCode>]` for a status callback, `<MessageSid>` for an inbound
    message; the body's SHA-256 when the request is neither (a JSON body, another product's callback)."""
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    status, error = fields.get("MessageStatus", ""), fields.get("ErrorCode", "")
    if not _TWILIO_SID.match(sid):
        return body_hash
    if not status:
        return sid
    if not _TWILIO_STATUS.match(status) or (error and not _TWILIO_ERROR.match(error)):
        return body_hash
    event_id = "-".join(part for part in (sid, status, error) if part)
    return event_id if _REQUEST_ID.match(event_id) else body_hash


# ---- SendGrid ---------------------------------------------------------------------------------------------

_SENDGRID_PROVIDERS = ("sendgrid", "sendgrid-inbound")


def sign_sendgrid(private_key: EllipticCurvePrivateKey, timestamp: int | str, body: bytes) -> str:
    """The `X-Twilio-Email-Event-Webhook-Signature` SendGrid sends for `body` at `timestamp` (tests, local)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signature = private_key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


class SendGridVerifier:
    """SendGrid's signed Event Webhook (`provider="sendgrid"`) and signed Inbound Parse
    (`provider="sendgrid-inbound"`, a security policy with signing attached to the Parse setting): ECDSA P-256
    / SHA-256 over the timestamp header followed by the raw body. The tenant secrets are DER
    SubjectPublicKeyInfo keys (what SendGrid shows, base64, is the keyring value); every held key is tried.

    The request id is the SHA-256 of the body: an Event Webhook POST is a batch, and its events are
    deduplicated one by one later, on `sg_event_id`.
    """

    SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
    TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

    def __init__(self, tolerance: timedelta = timedelta(minutes=10), *, provider: str = "sendgrid") -> None:
        if provider not in _SENDGRID_PROVIDERS:
            raise ConfigurationError(f"SendGridVerifier provider must be one of {_SENDGRID_PROVIDERS}")
        self.provider = provider
        self._tolerance = tolerance

    def verify(
        self, *, body: bytes, headers: Mapping[str, str], secrets: Sequence[bytes], now: datetime
    ) -> VerifiedWebhook:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        offered = headers.get(self.SIGNATURE_HEADER, "")
        timestamp = headers.get(self.TIMESTAMP_HEADER, "")
        if not offered or not timestamp:
            raise WebhookRejected("missing X-Twilio-Email-Event-Webhook-Signature or -Timestamp")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise WebhookRejected("malformed X-Twilio-Email-Event-Webhook-Timestamp")
        signed_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
        if signed_at < now - self._tolerance:
            raise WebhookRejected("SendGrid timestamp too old")
        if signed_at > now + self._tolerance:
            raise WebhookRejected("SendGrid timestamp in the future")
        signature = _b64(offered, "X-Twilio-Email-Event-Webhook-Signature")

        keys = _p256_keys(secrets)
        signed = timestamp.encode() + body
        matched = False
        for key in keys or [_decoy_key()]:  # the decoy costs what a real key costs, and never counts
            try:
                key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
                matched = matched or bool(keys)
            except (InvalidSignature, ValueError):
                continue
        if not matched:
            raise WebhookRejected("no signature matches a held key" if keys else "no held key is a P-256 public key")
        return VerifiedWebhook(event_id=hashlib.sha256(body).hexdigest(), signed_at=signed_at)


def _p256_keys(secrets: Sequence[bytes]) -> list[EllipticCurvePublicKey]:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    keys: list[EllipticCurvePublicKey] = []
    for secret in secrets:
        try:
            key = load_der_public_key(secret)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            keys.append(key)
    return keys


@lru_cache(maxsize=1)
def _decoy_key() -> EllipticCurvePublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.derive_private_key(0x5E1D6A1D, ec.SECP256R1()).public_key()


# ---- Microsoft Graph --------------------------------------------------------------------------------------

_MAX_NOTIFICATIONS = 1000
_MAX_VALIDATION_TOKEN = 4096


class GraphVerifier:
    """Graph change notifications: Graph signs nothing, so every notification of the batch must carry the
    `clientState` the tenant's subscriptions were created with (one of the held versions, compared in constant
    time). Notifications with resource data are also bound to us by their encryption: only the holder of the
    subscription certificate's private key can read them (the consumer decrypts)."""

    provider = "graph"

    def verify(
        self, *, body: bytes, headers: Mapping[str, str], secrets: Sequence[bytes], now: datetime
    ) -> VerifiedWebhook:
        notifications = _json_object(body).get("value")
        if not isinstance(notifications, list) or not 1 <= len(notifications) <= _MAX_NOTIFICATIONS:
            raise WebhookRejected("body has no notifications in `value`")
        for notification in notifications:
            state = notification.get("clientState") if isinstance(notification, dict) else None
            if not isinstance(state, str) or not state:
                raise WebhookRejected("a notification has no clientState")
            if not _any_equal(state.encode(), secrets):
                raise WebhookRejected("a notification's clientState matches no held secret")
        return VerifiedWebhook(event_id=hashlib.sha256(body).hexdigest(), signed_at=now)


def graph_validation_token(event: Mapping[str, Any]) -> str | None:
    """The `validationToken` of a Graph subscription-validation request (an API Gateway REST proxy event), to
    be answered 200 `text/plain` with exactly this text (and `X-Content-Type-Options: nosniff`); None when the
    request is not one. API Gateway has already URL-decoded it. Anything with control characters or longer
    than 4 KiB is not a token Graph would send, and is not echoed."""
    params = event.get("queryStringParameters")
    token = params.get("validationToken") if isinstance(params, Mapping) else None
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_VALIDATION_TOKEN or not token.isprintable():
        return None
    return token


# ---- shared helpers ---------------------------------------------------------------------------------------


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRejected("body is not JSON") from None
    if not isinstance(document, dict):
        raise WebhookRejected("body is not a JSON object")
    return document


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise WebhookRejected(f"missing {name}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected(f"{name} is not base64") from None


def _any_equal(value: bytes, secrets: Sequence[bytes]) -> bool:
    """Whether `value` equals one of `secrets`; every comparison runs, each in constant time."""
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(value, secret)
    return found
