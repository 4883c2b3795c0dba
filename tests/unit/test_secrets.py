"""shared.secrets: the tenant-secret port (keyring documents, versions, caching of absence, never logged)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from shared.errors import BadRequest, ConfigurationError
from shared.secrets import Keyring, SecretNotFound, TenantSecrets, new_keyring, rotate_keyring
from tests.fakes import FakeSecretStore, keyring

KEY_1 = b"\x01" * 32
KEY_2 = b"\x02" * 32


def test_a_secret_is_named_prefix_tenant_kind() -> None:
    store = FakeSecretStore({"ats-dev/tenants/acme/webhook/standard": keyring("1", {"1": KEY_1})})
    secrets = TenantSecrets("ats-dev/tenants/", fetch=store)

    assert secrets.current("acme", "webhook/standard") == ("1", KEY_1)
    assert store.asked == ["ats-dev/tenants/acme/webhook/standard"]


def test_every_version_is_returned_oldest_first_and_current_is_the_named_one() -> None:
    doc = json.dumps(
        {
            "current": "2",
            "keys": {
                "10": base64.b64encode(b"c" * 32).decode(),
                **json.loads(keyring("2", {"2": KEY_2, "1": KEY_1}))["keys"],
            },
        }
    )
    secrets = TenantSecrets("p/", fetch=FakeSecretStore({"p/acme/hmac": doc}))

    assert list(secrets.all_versions("acme", "hmac")) == ["1", "2", "10"]
    assert secrets.current("acme", "hmac") == ("2", KEY_2)


def test_text_kinds_keep_their_value() -> None:
    doc = json.dumps({"current": "1", "keys": {"1": "client-id:client-secret"}})
    secrets = TenantSecrets("p/", fetch=FakeSecretStore({"p/acme/oauth/graph": doc}))

    assert secrets.current_text("acme", "oauth/graph") == ("1", "client-id:client-secret")
    with pytest.raises(ConfigurationError, match="p/acme/oauth/graph version 1 is not base64"):
        secrets.current("acme", "oauth/graph")


def test_a_key_shorter_than_asked_is_a_configuration_error_naming_the_secret_not_the_value() -> None:
    short = base64.b64encode(b"k" * 16).decode()
    secrets = TenantSecrets(
        "p/", fetch=FakeSecretStore({"p/acme/hmac": json.dumps({"current": "1", "keys": {"1": short}})})
    )

    with pytest.raises(ConfigurationError) as raised:
        secrets.current("acme", "hmac", min_bytes=32)
    assert "p/acme/hmac" in raised.value.message
    assert short not in raised.value.message


@pytest.mark.parametrize(
    "document",
    [
        {"current": "2", "keys": {"1": base64.b64encode(KEY_1).decode()}},
        {"keys": {"1": base64.b64encode(KEY_1).decode()}},
        {"current": "1"},
        {"current": "1", "keys": ["x"]},
        {"current": "1", "keys": {"1": 5}},
        {"current": "1", "keys": {"1": ""}},
        ["not", "an", "object"],
        "not json",
    ],
    ids=[
        "current-missing",
        "no-current",
        "no-keys",
        "keys-a-list",
        "value-not-text",
        "value-empty",
        "a-list",
        "not-json",
    ],
)
def test_a_malformed_keyring_is_a_configuration_error_naming_the_secret(document: Any) -> None:
    raw = document if isinstance(document, str) else json.dumps(document)
    secrets = TenantSecrets("p/", fetch=FakeSecretStore({"p/acme/hmac": raw}))

    with pytest.raises(ConfigurationError, match="tenant secret p/acme/hmac is malformed"):
        secrets.keyring("acme", "hmac")


def test_a_parsed_document_is_accepted() -> None:
    secrets = TenantSecrets("p/", fetch=FakeSecretStore({"p/acme/hmac": json.loads(keyring("1", {"1": KEY_1}))}))
    assert secrets.current("acme", "hmac") == ("1", KEY_1)


def test_a_missing_secret_is_secret_not_found_and_is_remembered_for_max_age() -> None:
    store = FakeSecretStore({})
    secrets = TenantSecrets("p/", fetch=store, max_age=300)

    for _ in range(3):
        with pytest.raises(SecretNotFound, match="p/nobody/webhook/standard"):
            secrets.all_versions("nobody", "webhook/standard")

    assert store.asked == ["p/nobody/webhook/standard"]  # probing one name costs one look-up per window


def test_absence_is_forgotten_after_max_age() -> None:
    store = FakeSecretStore({})
    secrets = TenantSecrets("p/", fetch=store, max_age=0)
    for _ in range(2):
        with pytest.raises(SecretNotFound):
            secrets.keyring("acme", "hmac")
    assert len(store.asked) == 2


@pytest.mark.parametrize("tenant", ["../other", "ACME", "a", ""])
def test_an_invalid_tenant_is_refused_before_any_lookup(tenant: str) -> None:
    store = FakeSecretStore({})
    with pytest.raises(BadRequest):
        TenantSecrets("p/", fetch=store).keyring(tenant, "hmac")
    assert store.asked == []


@pytest.mark.parametrize("tenant", ["_gateway", "_platform"])
def test_system_tenants_hold_no_secrets(tenant: str) -> None:
    store = FakeSecretStore({})
    with pytest.raises(SecretNotFound):
        TenantSecrets("p/", fetch=store).keyring(tenant, "hmac")
    assert store.asked == []


@pytest.mark.parametrize("kind", ["", "HMAC", "webhook/", "../hmac", "webhook/a/b", "a b"])
def test_an_invalid_kind_is_a_configuration_error(kind: str) -> None:
    with pytest.raises(ConfigurationError, match="kind"):
        TenantSecrets("p/", fetch=FakeSecretStore({})).keyring("acme", kind)


def test_a_prefix_is_required() -> None:
    with pytest.raises(ConfigurationError, match="TENANT_SECRET_PREFIX"):
        TenantSecrets("")


def test_values_never_appear_in_a_keyrings_repr_or_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    value = base64.b64encode(KEY_1).decode()
    secrets = TenantSecrets("p/", fetch=FakeSecretStore({"p/acme/hmac": keyring("1", {"1": KEY_1})}))
    with caplog.at_level(logging.DEBUG):
        ring = secrets.keyring("acme", "hmac")
        secrets.all_versions("acme", "hmac")

    assert isinstance(ring, Keyring)
    assert value not in repr(ring) and value not in str(ring)
    assert value not in caplog.text


def test_new_and_rotated_keyrings() -> None:
    first = new_keyring()
    doc = json.loads(first)
    assert doc["current"] == "1" and len(base64.b64decode(doc["keys"]["1"])) == 32
    assert json.loads(new_keyring())["keys"]["1"] != doc["keys"]["1"]

    rotated = json.loads(rotate_keyring(first))
    assert rotated["current"] == "2"
    assert rotated["keys"]["1"] == doc["keys"]["1"]
    assert len(base64.b64decode(rotated["keys"]["2"])) == 32
