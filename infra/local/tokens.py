"""The local stand-in for the Cognito user pool: issues ID tokens (people) and client-credentials access tokens
(machine clients) signed with local RSA keys, publishes them as a JWKS with `kid`s, and verifies a token as API
Gateway's Cognito authorizer does (RS256 signature by a key of the JWKS, issuer, token use, audience of ID
tokens, client of access tokens, expiry).

Keys rotate as a user pool's can: `rotate()` adds a signing key; tokens signed by an older key keep verifying
until `remove_key` drops it from the JWKS; a token naming a `kid` the JWKS lacks is refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import ROLES_CLAIM, TENANT_CLAIM, Role
from shared.keys import SYSTEM_TENANTS

DEFAULT_LIFETIME_SECONDS = 3600  # Cognito's default, when the template's app clients say nothing
# Machine clients are created at onboarding with 1-hour access tokens (docs/recipe.md), not by the template, whose
# app clients are the people's (15 minutes, infra/constants.py): the local pool issues theirs with this lifetime.
MACHINE_TOKEN_LIFETIME_SECONDS = 3600
# The ID tokens of .local/session.json are minted once, at start: they stand in for an app that refreshes its
# tokens (a refresh token lives 12 hours), so a long e2e run or a working day of `make run` is not cut off at 15
# minutes. Tokens from `POST /_local/tokens` keep the app clients' lifetime.
SESSION_TOKEN_LIFETIME_SECONDS = 12 * 3600


class InvalidToken(Exception):
    """Why a token was refused (for the runtime's own log; callers only ever see `Unauthorized`)."""


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _stable_id(*parts: str, length: int = 26) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)).hex[:length]


@dataclass
class LocalUserPool:
    region: str
    id_token_lifetime: int = DEFAULT_LIFETIME_SECONDS  # the people's app clients' (the template's)
    machine_token_lifetime: int = MACHINE_TOKEN_LIFETIME_SECONDS  # the integration clients' access tokens
    resource_server_scopes: tuple[str, ...] = ()  # full scope names, e.g. "ats/identity.read"
    pool_id: str = field(default_factory=lambda: "local_" + uuid.uuid4().hex[:9])
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex[:26])  # the people's app client
    _keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    _signing_kid: str = ""

    def __post_init__(self) -> None:
        if not self._keys:
            self.rotate()

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    # -- keys ----------------------------------------------------------------------------------------------
    @property
    def signing_kid(self) -> str:
        return self._signing_kid

    def rotate(self) -> str:
        """Add a new signing key; tokens signed by the previous keys keep verifying. Returns the new kid."""
        kid = uuid.uuid4().hex
        self._keys[kid] = _new_key()
        self._signing_kid = kid
        return kid

    def remove_key(self, kid: str) -> None:
        """Drop a key from the JWKS: every token it signed is refused from now on. The signing key stays."""
        if kid == self._signing_kid:
            raise ValueError("the current signing key cannot be removed: rotate first")
        self._keys.pop(kid, None)

    def jwks(self) -> dict[str, Any]:
        """The pool's public keys as Cognito publishes them at `<issuer>/.well-known/jwks.json`."""
        keys = []
        for kid, key in self._keys.items():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def _sign(self, claims: dict[str, Any]) -> str:
        kid = self._signing_kid
        return jwt.encode(claims, self._keys[kid], algorithm="RS256", headers={"kid": kid})

    # -- issuing -------------------------------------------------------------------------------------------
    def integration_client(self, tenant: str) -> str:
        """The app client id of `tenant`'s integration (one per tenant, stable for the pool's life)."""
        return _stable_id(self.pool_id, "integration", tenant)

    def issue(self, tenant: str, roles: list[str], username: str | None = None, lifetime: int | None = None) -> str:
        """An ID token like Cognito's for a user of `tenant` in the groups `roles`."""
        _check_tenant(tenant)
        now = int(time.time())
        sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{username or '-'.join(roles)}"))
        claims = {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.client_id,
            "token_use": "id",
            "auth_time": now,
            "iat": now,
            "exp": now + (self.id_token_lifetime if lifetime is None else lifetime),
            "cognito:username": username or f"{tenant}-{'-'.join(roles) or 'nobody'}",
            ROLES_CLAIM: roles,
            TENANT_CLAIM: tenant,
        }
        return self._sign(claims)

    def issue_access(self, tenant: str, scopes: Iterable[str] | None = None, lifetime: int | None = None) -> str:
        """A client-credentials access token of `tenant`'s integration client with `scopes` (short or full names;
        all of the resource server's when None), shaped as Cognito issues it after the pre-token-generation
        trigger added the tenant: no `aud`, no groups, no username."""
        _check_tenant(tenant)
        granted = self.full_scopes(self.resource_server_scopes if scopes is None else scopes)
        client = self.integration_client(tenant)
        now = int(time.time())
        claims = {
            "sub": client,
            "client_id": client,
            "iss": self.issuer,
            "token_use": "access",
            "scope": " ".join(granted),
            "auth_time": now,
            "iat": now,
            "exp": now + (self.machine_token_lifetime if lifetime is None else lifetime),
            "jti": str(uuid.uuid4()),
            "version": 2,
            TENANT_CLAIM: tenant,
        }
        return self._sign(claims)

    def full_scopes(self, scopes: Iterable[str]) -> list[str]:
        """Scopes as full names (`ats/identity.read`); ValueError for one the resource server does not define."""
        prefix = self.resource_server_scopes[0].split("/")[0] + "/" if self.resource_server_scopes else ""
        out = []
        for scope in scopes:
            full = scope if "/" in scope or not prefix else prefix + scope
            if self.resource_server_scopes and full not in self.resource_server_scopes:
                raise ValueError(f"no scope {scope!r} on the resource server: {', '.join(self.resource_server_scopes)}")
            out.append(full)
        return out

    # -- verifying -----------------------------------------------------------------------------------------
    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if one of the pool's keys signed it and it is current; InvalidToken otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"not a JWT: {exc}") from None
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken("the token's kid is not in the pool's JWKS")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key(),
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "token_use", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        use = claims.get("token_use")
        if use == "id":
            if claims.get("aud") != self.client_id:
                raise InvalidToken("an ID token of another app client")
        elif use == "access":
            if "aud" in claims or claims.get("client_id") != claims.get("sub"):
                raise InvalidToken("an access token must name its client as sub and client_id, with no aud")
        else:
            raise InvalidToken(f"token_use {use!r} is neither id nor access")
        return claims

    # -- what session.json carries ---------------------------------------------------------------------------
    def session_tokens(self, tenants: list[str]) -> dict[str, dict[str, str]]:
        """One ready ID token per role for each tenant, valid for SESSION_TOKEN_LIFETIME_SECONDS."""
        return {
            tenant: {
                role.value: self.issue(tenant, [role.value], lifetime=SESSION_TOKEN_LIFETIME_SECONDS) for role in Role
            }
            for tenant in tenants
        }

    def integration_tokens(self, tenants: list[str]) -> dict[str, str]:
        """One access token per tenant, carrying every scope of the resource server, with a machine's lifetime."""
        return {tenant: self.issue_access(tenant) for tenant in tenants}


def _check_tenant(tenant: str) -> None:
    if not tenant or tenant in SYSTEM_TENANTS:
        raise ValueError(f"{tenant!r} is not a tenant the pool issues tokens for (system tenants never are)")


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """The full scope names an access token carries (none for an ID token)."""
    if claims.get("token_use") != "access":
        return frozenset()
    return frozenset(str(claims.get("scope") or "").split())


def authorizer_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as the REST API's Cognito authorizer hands them to the function: every value a string, lists
    joined with commas."""
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in claims.items()}
