"""The local stand-in for the Cognito user pool: issues ID tokens signed with a local RSA key and verifies
them as API Gateway's Cognito authorizer does (RS256 signature, issuer, audience, token use, expiry)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import ROLES_CLAIM, TENANT_CLAIM, Role

TOKEN_LIFETIME_SECONDS = 12 * 3600


class InvalidToken(Exception):
    pass


@dataclass
class LocalUserPool:
    region: str
    pool_id: str = field(default_factory=lambda: "local_" + uuid.uuid4().hex[:9])
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex[:26])
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def issue(
        self, tenant: str, roles: list[str], username: str | None = None, lifetime: int = TOKEN_LIFETIME_SECONDS
    ) -> str:
        """An ID token like Cognito's for a user of `tenant` in the groups `roles`."""
        now = int(time.time())
        sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{username or '-'.join(roles)}"))
        claims = {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.client_id,
            "token_use": "id",
            "auth_time": now,
            "iat": now,
            "exp": now + lifetime,
            "cognito:username": username or f"{tenant}-{'-'.join(roles) or 'nobody'}",
            ROLES_CLAIM: roles,
            TENANT_CLAIM: tenant,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if it is one of ours and current; InvalidToken with the reason otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "token_use"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature is not valid") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from None
        if claims.get("token_use") != "id":
            raise InvalidToken("an ID token is required")
        return claims

    def session_tokens(self, tenants: list[str]) -> dict[str, dict[str, str]]:
        """One ready token per role for each tenant."""
        return {tenant: {role.value: self.issue(tenant, [role.value]) for role in Role} for tenant in tenants}


def authorizer_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as the REST API's Cognito authorizer hands them to the function: every value a string, lists
    joined with commas."""
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in claims.items()}
