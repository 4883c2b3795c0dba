"""One-time, signed, short-lived self-service links: the applicant's only credential (no account).

A token is `<payload>.<signature>`: the payload is base64url of the compact JSON `{"t": tenant, "p": person id,
"l": link id, "e": expiry in epoch seconds}`, and the signature is the tenant's keyed digest of that payload text
(`shared.crypto.TenantKeys`, kind `self-service-link`: HMAC-SHA256 under the tenant's current `hmac` key,
`h<version>:<hex>`). Verification recomputes it under every key version the tenant still holds and compares each
in constant time, so a key rotation does not void links already issued.

The link item (`link_key`) records its issue and its use; the first request that presents the token consumes it
with a conditional update. Every refusal (malformed, unknown tenant, bad signature, expired, already used) is the
same 401 with the same generic message, so a token cannot be probed: a used link is a 401, not a 410, since
telling "used" from "never valid" would confirm that a stolen token was once genuine. Refusals are audited under
the token's tenant when its signature verified, otherwise under the `_gateway` pseudo-tenant.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from functions.retention.logic.ids import check_id
from functions.retention.models.subjects_io import SelfServiceLink
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.errors import ConfigurationError, NotFound, Unauthenticated
from shared.keys import GATEWAY_TENANT, tenant_problem
from shared.permissions import Permission, authorize

LINK_KIND = "self-service-link"
SELF_SERVICE_JOB = "self-service"
LINK_ACTION = "retention:self-service-link"
REFUSAL = "the link is not valid: ask for a new one"
MAX_TTL_MINUTES = 1440
_MAX_TOKEN = 2048


class LinkStore(Protocol):
    """The part of dal/subjects.py's SubjectStore that links need."""

    def person(self, tenant: str, person_id: str) -> dict[str, Any] | None: ...

    def put_link(self, link: SelfServiceLink) -> None: ...

    def consume_link(self, tenant: str, link_id: str, *, used_at: datetime, used_for: str, request_id: str) -> bool: ...


class LinkSigner(Protocol):
    """Keyed digests under the tenant's versioned keys (shared.crypto.TenantKeys)."""

    def digest(self, tenant: str, kind: str, value: str) -> str: ...

    def candidates(self, tenant: str, kind: str, value: str) -> list[str]: ...


@dataclass(frozen=True)
class IssuedLink:
    link_id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class VerifiedLink:
    """A token that verified and was consumed by this request."""

    tenant: str
    person_id: str
    link_id: str

    @property
    def actor(self) -> Actor:
        """The self-service actor, named after its link (the audit trail tells one link's actions apart)."""
        return Actor.system(f"{SELF_SERVICE_JOB}:{self.link_id}", self.tenant)


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_link(
    actor: Actor,
    person_id: str,
    ttl_minutes: int,
    *,
    store: LinkStore,
    signer: LinkSigner,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> IssuedLink:
    """A new one-time link for the person (the ATS hands it to the applicant). NotFound for an unknown person."""
    check_id(person_id, "person_id")
    authorize(
        actor,
        Permission.REPORT_RETENTION_RECORDS,
        resource=f"person/{person_id}/self-service-link",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    if not 1 <= ttl_minutes <= MAX_TTL_MINUTES:
        raise ValueError("ttl_minutes out of range")  # the request model bounds it; this guards other callers
    if store.person(actor.tenant, person_id) is None:
        raise NotFound("no person")
    now = clock.now()
    # Whole seconds: the token carries epoch seconds, and the stored expiry must be the same instant.
    expires_at = datetime.fromtimestamp(int((now + timedelta(minutes=ttl_minutes)).timestamp()), tz=UTC)
    link_id = uuid.uuid4().hex
    payload = {"t": actor.tenant, "p": person_id, "l": link_id, "e": int(expires_at.timestamp())}
    text = _b64e(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    token = f"{text}.{signer.digest(actor.tenant, LINK_KIND, text)}"
    store.put_link(
        SelfServiceLink(
            tenant=actor.tenant,
            link_id=link_id,
            person_id=person_id,
            issued_at=now,
            issued_by=actor.label,
            expires_at=expires_at,
        )
    )
    return IssuedLink(link_id=link_id, token=token, expires_at=expires_at)


def _refuse(
    audit: AuditLog, tenant: str, link_id: str | None, reason: str, request_id: str, source_ip: str | None
) -> Unauthenticated:
    actor = (
        Actor.system(f"{SELF_SERVICE_JOB}:{link_id}", tenant)
        if link_id and tenant != GATEWAY_TENANT
        else Actor.system(SELF_SERVICE_JOB, tenant)
    )
    audit.append(
        AuditEntry(
            tenant=tenant,
            actor=actor.label,
            action=LINK_ACTION,
            resource=f"self-service-link/{link_id}" if link_id and tenant != GATEWAY_TENANT else "self-service-link",
            outcome=Outcome.DENIED,
            request_id=request_id,
            reason=reason,
            source_ip=source_ip,
        )
    )
    return Unauthenticated(REFUSAL)


def redeem_link(
    token: str,
    purpose: str,
    *,
    store: LinkStore,
    signer: LinkSigner,
    audit: AuditLog,
    request_id: str,
    subject_request_id: str,
    source_ip: str | None = None,
) -> VerifiedLink:
    """Verify `token` and consume its link for `purpose`; Unauthenticated (401, generic) for any problem."""
    parsed = _parse(token)
    if parsed is None:
        raise _refuse(audit, GATEWAY_TENANT, None, "malformed token", request_id, source_ip)
    text, signature, claims = parsed
    tenant, person_id, link_id, expiry = claims.tenant, claims.person_id, claims.link_id, claims.expiry
    if tenant_problem(tenant):
        raise _refuse(audit, GATEWAY_TENANT, None, "token names no tenant", request_id, source_ip)
    try:
        expected = signer.candidates(tenant, LINK_KIND, text)
    except ConfigurationError:  # SecretNotFound: no such tenant (or not onboarded)
        raise _refuse(audit, GATEWAY_TENANT, None, "unknown tenant", request_id, source_ip) from None
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate.encode(), signature.encode())
    if not matched:
        raise _refuse(audit, GATEWAY_TENANT, None, "signature not verified", request_id, source_ip)
    now = clock.now()
    if now.timestamp() >= expiry:
        raise _refuse(audit, tenant, link_id, "link expired", request_id, source_ip)
    if not store.consume_link(tenant, link_id, used_at=now, used_for=purpose, request_id=subject_request_id):
        raise _refuse(audit, tenant, link_id, "link already used or unknown", request_id, source_ip)
    return VerifiedLink(tenant=tenant, person_id=person_id, link_id=link_id)


@dataclass(frozen=True)
class _Claims:
    tenant: str
    person_id: str
    link_id: str
    expiry: int


def _parse(token: str) -> tuple[str, str, _Claims] | None:
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 1:
        return None
    text, signature = token.split(".")
    try:
        payload = json.loads(_b64d(text))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or set(payload) != {"t", "p", "l", "e"}:
        return None
    if not all(isinstance(payload[k], str) and payload[k] for k in ("t", "p", "l")):
        return None
    if not isinstance(payload["e"], int) or isinstance(payload["e"], bool):
        return None
    try:
        check_id(str(payload["p"]), "person_id")
        check_id(str(payload["l"]), "link_id")
    except Exception:  # noqa: BLE001 - any malformed id is a malformed token
        return None
    return text, signature, _Claims(str(payload["t"]), str(payload["p"]), str(payload["l"]), payload["e"])
