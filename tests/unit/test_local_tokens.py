"""The local user pool: the two token kinds as Cognito shapes them, a JWKS with key ids, rotation, and refusals."""

from __future__ import annotations

import time

import jwt
import pytest

from infra.local.tokens import (
    MACHINE_TOKEN_LIFETIME_SECONDS,
    SESSION_TOKEN_LIFETIME_SECONDS,
    InvalidToken,
    LocalUserPool,
    scopes_of,
)

SCOPES = ("ats/identity.read", "ats/retention.write", "ats/messages.write")


@pytest.fixture(scope="module")
def pool() -> LocalUserPool:
    return LocalUserPool(region="eu-west-1", resource_server_scopes=SCOPES)


def unverified(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_an_id_token_is_a_person_of_the_users_app_client(pool: LocalUserPool) -> None:
    claims = pool.verify(pool.issue("acme", ["recruiter"]))
    assert claims["token_use"] == "id"
    assert claims["aud"] == pool.client_id
    assert claims["custom:tenant"] == "acme" and claims["cognito:groups"] == ["recruiter"]
    assert claims["exp"] - claims["iat"] == 3600


def test_an_access_token_is_the_tenants_machine_client_with_its_scopes(pool: LocalUserPool) -> None:
    claims = pool.verify(pool.issue_access("globex"))
    assert claims["token_use"] == "access"
    assert claims["sub"] == claims["client_id"] == pool.integration_client("globex")
    assert claims["custom:tenant"] == "globex"
    assert claims["scope"] == " ".join(SCOPES)  # every scope of the resource server by default
    assert "aud" not in claims and "cognito:groups" not in claims and "cognito:username" not in claims
    assert claims["jti"] and str(claims["version"]) == "2"
    assert claims["exp"] - claims["iat"] == 3600
    assert pool.integration_client("acme") != pool.integration_client("globex")


def test_scopes_are_given_short_or_full_and_must_exist(pool: LocalUserPool) -> None:
    claims = pool.verify(pool.issue_access("acme", ["retention.write", "ats/identity.read"]))
    assert scopes_of(claims) == {"ats/retention.write", "ats/identity.read"}
    assert scopes_of(pool.verify(pool.issue("acme", ["auditor"]))) == frozenset()
    with pytest.raises(ValueError, match="no scope"):
        pool.issue_access("acme", ["ats/everything"])


def _lifetime(claims: dict[str, object]) -> int:
    return int(claims["exp"]) - int(claims["iat"])  # type: ignore[call-overload]


def test_lifetimes_are_the_app_clients() -> None:
    # People's ID tokens live as the template's app clients say; machine clients are created at onboarding with
    # 1-hour access tokens (docs/recipe.md), whatever the people's clients say.
    short = LocalUserPool(region="eu-west-1", id_token_lifetime=900)
    assert _lifetime(unverified(short.issue("acme", []))) == 900
    assert _lifetime(unverified(short.issue_access("acme"))) == MACHINE_TOKEN_LIFETIME_SECONDS == 3600
    assert _lifetime(unverified(short.issue("acme", [], lifetime=-60))) == -60


def test_session_tokens_outlive_a_working_session_and_machine_tokens_live_an_hour() -> None:
    short = LocalUserPool(region="eu-west-1", id_token_lifetime=900)
    people = short.session_tokens(["acme"])["acme"]
    assert {_lifetime(unverified(token)) for token in people.values()} == {SESSION_TOKEN_LIFETIME_SECONDS}
    assert SESSION_TOKEN_LIFETIME_SECONDS == 12 * 3600
    assert _lifetime(unverified(short.integration_tokens(["acme"])["acme"])) == 3600


@pytest.mark.parametrize("tenant", ["_gateway", "_platform", ""])
def test_the_pool_never_mints_a_system_tenant(pool: LocalUserPool, tenant: str) -> None:
    with pytest.raises(ValueError):
        pool.issue(tenant, ["auditor"])
    with pytest.raises(ValueError):
        pool.issue_access(tenant)


def test_the_jwks_names_every_key_by_kid_and_tokens_say_which_signed_them() -> None:
    pool = LocalUserPool(region="eu-west-1")
    first = pool.signing_kid
    second = pool.rotate()
    kids = [k["kid"] for k in pool.jwks()["keys"]]
    assert kids == [first, second]
    assert all(k["alg"] == "RS256" and k["kty"] == "RSA" and "d" not in k for k in pool.jwks()["keys"])
    assert jwt.get_unverified_header(pool.issue("acme", []))["kid"] == second


def test_a_rotated_out_key_verifies_until_it_is_removed() -> None:
    pool = LocalUserPool(region="eu-west-1")
    old_kid = pool.signing_kid
    old = pool.issue("acme", ["auditor"])
    pool.rotate()
    new = pool.issue_access("acme")
    # Still in the JWKS: both verify
    assert pool.verify(old)["custom:tenant"] == "acme"
    assert pool.verify(new)["token_use"] == "access"
    # Removed: the old one is refused, the new one still verifies
    pool.remove_key(old_kid)
    with pytest.raises(InvalidToken, match="kid"):
        pool.verify(old)
    assert pool.verify(new)["token_use"] == "access"
    with pytest.raises(ValueError):
        pool.remove_key(pool.signing_kid)


def test_a_token_signed_by_another_pools_key_is_refused(pool: LocalUserPool) -> None:
    stranger = LocalUserPool(region="eu-west-1", pool_id=pool.pool_id, client_id=pool.client_id)
    with pytest.raises(InvalidToken, match="kid"):
        pool.verify(stranger.issue("acme", ["auditor"]))


@pytest.mark.parametrize(
    "change",
    [
        {"token_use": "refresh"},
        {"token_use": None},
        {"aud": "another-client"},
        {"iss": "https://cognito-idp.eu-west-1.amazonaws.com/elsewhere"},
        {"exp": int(time.time()) - 5},
    ],
)
def test_claims_that_are_not_cognitos_are_refused(pool: LocalUserPool, change: dict[str, object]) -> None:
    claims = unverified(pool.issue("acme", ["auditor"]))
    claims.update(change)
    claims = {k: v for k, v in claims.items() if v is not None}
    with pytest.raises(InvalidToken):
        pool.verify(pool._sign(claims))


def test_an_access_token_with_an_audience_or_another_client_is_refused(pool: LocalUserPool) -> None:
    claims = unverified(pool.issue_access("acme"))
    for change in ({"aud": pool.client_id}, {"client_id": "someone-else"}):
        with pytest.raises(InvalidToken):
            pool.verify(pool._sign({**claims, **change}))


def test_an_unsigned_token_is_refused(pool: LocalUserPool) -> None:
    claims = unverified(pool.issue("acme", ["auditor"]))
    forged = jwt.encode(
        claims,
        key=None,  # type: ignore[arg-type]
        algorithm="none",
        headers={"kid": pool.signing_kid},
    )
    with pytest.raises(InvalidToken):
        pool.verify(forged)
