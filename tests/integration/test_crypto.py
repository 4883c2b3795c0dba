"""shared.crypto against moto: FieldCipher with a KMS key, TenantKeys with Secrets Manager secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from shared.crypto import FieldCipher, TenantKeys, new_hmac_secret
from shared.errors import BadRequest, ConfigurationError
from tests.integration.conftest import REGION

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

PREFIX = "ats/it/hmac/"


@pytest.fixture
def kms(aws: None) -> KMSClient:
    client: KMSClient = boto3.client("kms", region_name=REGION)
    return client


@pytest.fixture
def key_id(kms: KMSClient) -> str:
    return kms.create_key(Description="it data key")["KeyMetadata"]["KeyId"]


def _count_calls(client: KMSClient, operation: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    client.meta.events.register(f"provide-client-params.kms.{operation}", lambda params, **_: calls.append(params))
    return calls


def _parts(value: str) -> list[str]:
    assert value.startswith("enc:v1:")
    return value[len("enc:v1:") :].split(":")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_round_trip_with_one_data_key_per_tenant_and_purpose(kms: KMSClient, key_id: str) -> None:
    generated = _count_calls(kms, "GenerateDataKey")
    cipher = FieldCipher(key_id, client=kms)

    first = cipher.encrypt("acme", "message-body", "Dear candidate, ünïcode ✓")
    second = cipher.encrypt("acme", "message-body", "Dear candidate, ünïcode ✓")
    other = cipher.encrypt("globex", "message-body", "hello")

    assert first != second  # fresh nonce per value
    assert _parts(first)[0] == _parts(second)[0]  # the same cached data key wraps both
    assert _parts(first)[1] != _parts(second)[1]
    assert len(_b64d(_parts(first)[1])) == 12
    assert "candidate" not in first
    assert [c["EncryptionContext"] for c in generated] == [
        {"tenant": "acme", "purpose": "message-body"},
        {"tenant": "globex", "purpose": "message-body"},
    ]
    assert {c["KeyId"] for c in generated} == {key_id}

    # A fresh cipher (another execution environment) decrypts through KMS.
    reader = FieldCipher(key_id, client=kms)
    assert reader.decrypt("acme", "message-body", first) == "Dear candidate, ünïcode ✓"
    assert reader.decrypt("acme", "message-body", second) == "Dear candidate, ünïcode ✓"
    assert reader.decrypt("globex", "message-body", other) == "hello"


def test_the_default_client_comes_from_the_shared_factory(key_id: str) -> None:
    cipher = FieldCipher(key_id)
    assert cipher.decrypt("acme", "notes", cipher.encrypt("acme", "notes", "x")) == "x"


def test_a_value_decrypts_only_for_its_tenant_and_purpose_once_the_data_key_is_known(
    kms: KMSClient, key_id: str
) -> None:
    cipher = FieldCipher(key_id, client=kms)
    value = cipher.encrypt("acme", "message-body", "secret")
    assert cipher.decrypt("acme", "message-body", value) == "secret"  # caches the unwrapped data key

    with pytest.raises(BadRequest, match="does not belong to this tenant and purpose"):
        cipher.decrypt("globex", "message-body", value)
    with pytest.raises(BadRequest, match="does not belong to this tenant and purpose"):
        cipher.decrypt("acme", "candidate-notes", value)


def test_a_cold_cipher_refuses_another_tenants_value_as_a_bad_request(kms: KMSClient, key_id: str) -> None:
    # A fresh cipher (a cold Lambda) has no unwrapped data key cached: KMS itself refuses the wrong context.
    value = FieldCipher(key_id, client=kms).encrypt("acme", "message-body", "secret")

    with pytest.raises(BadRequest, match="does not belong to this tenant and purpose"):
        FieldCipher(key_id, client=kms).decrypt("globex", "message-body", value)
    with pytest.raises(BadRequest, match="does not belong to this tenant and purpose"):
        FieldCipher(key_id, client=kms).decrypt("acme", "candidate-notes", value)


def test_kms_refuses_to_unwrap_a_data_key_under_another_tenants_context(kms: KMSClient, key_id: str) -> None:
    # The KMS encryption context binds the wrapped data key to its tenant and purpose.
    value = FieldCipher(key_id, client=kms).encrypt("acme", "message-body", "secret")
    wrapped = _b64d(_parts(value)[0])
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(
            CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext={"tenant": "globex", "purpose": "message-body"}
        )


def test_tampered_ciphertext_is_refused(kms: KMSClient, key_id: str) -> None:
    cipher = FieldCipher(key_id, client=kms)
    value = cipher.encrypt("acme", "message-body", "secret")
    wrapped, nonce, sealed = _parts(value)
    raw = bytearray(_b64d(sealed))
    raw[0] ^= 0x01
    tampered = "enc:v1:" + ":".join((wrapped, nonce, base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")))

    reader = FieldCipher(key_id, client=kms)
    with pytest.raises(BadRequest, match="does not belong"):
        reader.decrypt("acme", "message-body", tampered)
    other_nonce = base64.urlsafe_b64encode(b"\x00" * 12).decode().rstrip("=")
    with pytest.raises(BadRequest, match="does not belong"):
        reader.decrypt("acme", "message-body", f"enc:v1:{wrapped}:{other_nonce}:{sealed}")
    short_nonce = base64.urlsafe_b64encode(b"\x00" * 4).decode().rstrip("=")  # AES-GCM needs 8 bytes at least
    with pytest.raises(BadRequest, match="malformed"):
        reader.decrypt("acme", "message-body", f"enc:v1:{wrapped}:{short_nonce}:{sealed}")
    assert reader.decrypt("acme", "message-body", value) == "secret"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("plain text", "not an encrypted field"),
        ("enc:v1:onlyonepart", "malformed"),
        ("enc:v1:a:b:c:d", "malformed"),
        ("enc:v1:a:b:c=d", "malformed"),
    ],
)
def test_values_that_are_not_encrypted_fields_are_bad_requests(
    kms: KMSClient, key_id: str, value: str, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        FieldCipher(key_id, client=kms).decrypt("acme", "message-body", value)


# ---------------------------------------------------------------- TenantKeys


@pytest.fixture
def secrets(aws: None) -> SecretsManagerClient:
    client: SecretsManagerClient = boto3.client("secretsmanager", region_name=REGION)
    return client


def _expected(version: str, secret: str, value: str) -> str:
    key = base64.b64decode(json.loads(secret)["keys"][version])
    return f"h{version}:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _rotate(secrets: SecretsManagerClient, tenant: str, old: str) -> str:
    doc = json.loads(old)
    doc["keys"]["2"] = json.loads(new_hmac_secret("2"))["keys"]["2"]
    doc["current"] = "2"
    rotated = json.dumps(doc)
    secrets.put_secret_value(SecretId=f"{PREFIX}{tenant}", SecretString=rotated)
    return rotated


@pytest.fixture
def acme_secret(secrets: SecretsManagerClient) -> str:
    secret = new_hmac_secret()
    secrets.create_secret(Name=f"{PREFIX}acme", SecretString=secret)
    secrets.create_secret(Name=f"{PREFIX}globex", SecretString=new_hmac_secret())
    return secret


def test_digests_are_stable_versioned_and_per_tenant(acme_secret: str) -> None:
    keys = TenantKeys(PREFIX)
    digest = keys.digest("acme", "jane@example.com")

    assert digest == _expected("1", acme_secret, "jane@example.com")
    assert digest.startswith("h1:")
    assert keys.digest("acme", "jane@example.com") == digest
    assert TenantKeys(PREFIX).digest("acme", "jane@example.com") == digest
    assert keys.digest("acme", "john@example.com") != digest
    assert keys.digest("globex", "jane@example.com") != digest
    assert keys.candidates("acme", "jane@example.com") == [digest]


def test_rotation_adds_a_version_and_old_digests_still_match(secrets: SecretsManagerClient, acme_secret: str) -> None:
    old = TenantKeys(PREFIX, max_age=0).digest("acme", "jane@example.com")

    rotated = _rotate(secrets, "acme", acme_secret)
    keys = TenantKeys(PREFIX, max_age=0)
    new = keys.digest("acme", "jane@example.com")

    assert new == _expected("2", rotated, "jane@example.com")
    assert new.startswith("h2:") and new != old
    assert keys.candidates("acme", "jane@example.com") == [old, new]
    assert old in keys.candidates("acme", "jane@example.com")
    assert TenantKeys(PREFIX, max_age=0).digest("globex", "x").startswith("h1:")  # other tenants unaffected


def test_secrets_are_cached_for_max_age(secrets: SecretsManagerClient, acme_secret: str) -> None:
    keys = TenantKeys(PREFIX, max_age=300)
    before = keys.digest("acme", "v")
    _rotate(secrets, "acme", acme_secret)
    assert keys.digest("acme", "v") == before  # within max_age the cached secret is used

    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    assert keys.digest("acme", "v").startswith("h2:")


@pytest.mark.parametrize(
    "document",
    [
        {"current": "2", "keys": {"1": base64.b64encode(b"k" * 32).decode()}},
        {"keys": {"1": base64.b64encode(b"k" * 32).decode()}},
        {"current": "1", "keys": {"1": "not base64!"}},
        ["not", "an", "object"],
        {"current": "1", "keys": ["x"]},
    ],
    ids=["current-missing-from-keys", "no-current", "bad-base64", "not-an-object", "keys-not-an-object"],
)
def test_malformed_secrets_are_configuration_errors(secrets: SecretsManagerClient, document: Any) -> None:
    secrets.create_secret(Name=f"{PREFIX}acme", SecretString=json.dumps(document))
    with pytest.raises(ConfigurationError, match=f"{PREFIX}acme is malformed"):
        TenantKeys(PREFIX, max_age=0).digest("acme", "v")


def test_an_invalid_tenant_never_reaches_secrets_manager() -> None:
    with pytest.raises(BadRequest):
        TenantKeys(PREFIX).digest("../other", "v")
