"""shared.crypto and shared.secrets against moto: FieldCipher with a KMS key, TenantSecrets and TenantKeys with
Secrets Manager secrets read through Powertools parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from shared.crypto import FieldCipher, TenantKeys
from shared.errors import BadRequest, ConfigurationError
from shared.secrets import SecretNotFound, TenantSecrets, new_keyring
from tests.integration.conftest import REGION

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

PREFIX = "ats-it/tenants/"
REC = {"record": "T#acme#MSG#m-1", "field": "body"}
REC_G = {"record": "T#globex#MSG#m-1", "field": "body"}


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
    assert value.startswith("enc:v2:")
    return value[len("enc:v2:") :].split(":")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_round_trip_with_one_data_key_per_tenant_and_purpose(kms: KMSClient, key_id: str) -> None:
    generated = _count_calls(kms, "GenerateDataKey")
    cipher = FieldCipher(key_id, client=kms)

    first = cipher.encrypt("acme", "message-body", "Dear candidate, ünïcode ✓", **REC)
    second = cipher.encrypt("acme", "message-body", "Dear candidate, ünïcode ✓", **REC)
    other = cipher.encrypt("globex", "message-body", "hello", **REC_G)

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
    assert reader.decrypt("acme", "message-body", first, **REC) == "Dear candidate, ünïcode ✓"
    assert reader.decrypt("acme", "message-body", second, **REC) == "Dear candidate, ünïcode ✓"
    assert reader.decrypt("globex", "message-body", other, **REC_G) == "hello"


def test_the_default_client_comes_from_the_shared_factory(key_id: str) -> None:
    cipher = FieldCipher(key_id)
    assert cipher.decrypt("acme", "notes", cipher.encrypt("acme", "notes", "x", **REC), **REC) == "x"


def test_a_value_decrypts_only_for_its_tenant_and_purpose_once_the_data_key_is_known(
    kms: KMSClient, key_id: str
) -> None:
    cipher = FieldCipher(key_id, client=kms)
    value = cipher.encrypt("acme", "message-body", "secret", **REC)
    assert cipher.decrypt("acme", "message-body", value, **REC) == "secret"  # caches the unwrapped data key

    with pytest.raises(BadRequest, match="does not belong to this tenant, purpose, record and field"):
        cipher.decrypt("globex", "message-body", value, **REC)
    with pytest.raises(BadRequest, match="does not belong to this tenant, purpose, record and field"):
        cipher.decrypt("acme", "candidate-notes", value, **REC)


def test_a_cold_cipher_refuses_another_tenants_value_as_a_bad_request(kms: KMSClient, key_id: str) -> None:
    # A fresh cipher (a cold Lambda) has no unwrapped data key cached: KMS itself refuses the wrong context.
    value = FieldCipher(key_id, client=kms).encrypt("acme", "message-body", "secret", **REC)

    with pytest.raises(BadRequest, match="does not belong to this tenant, purpose, record and field"):
        FieldCipher(key_id, client=kms).decrypt("globex", "message-body", value, **REC)
    with pytest.raises(BadRequest, match="does not belong to this tenant, purpose, record and field"):
        FieldCipher(key_id, client=kms).decrypt("acme", "candidate-notes", value, **REC)


def test_kms_refuses_to_unwrap_a_data_key_under_another_tenants_context(kms: KMSClient, key_id: str) -> None:
    # The KMS encryption context binds the wrapped data key to its tenant and purpose.
    value = FieldCipher(key_id, client=kms).encrypt("acme", "message-body", "secret", **REC)
    wrapped = _b64d(_parts(value)[0])
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(
            CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext={"tenant": "globex", "purpose": "message-body"}
        )


def test_tampered_ciphertext_is_refused(kms: KMSClient, key_id: str) -> None:
    cipher = FieldCipher(key_id, client=kms)
    value = cipher.encrypt("acme", "message-body", "secret", **REC)
    wrapped, nonce, sealed = _parts(value)
    raw = bytearray(_b64d(sealed))
    raw[0] ^= 0x01
    tampered = "enc:v2:" + ":".join((wrapped, nonce, base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")))

    reader = FieldCipher(key_id, client=kms)
    with pytest.raises(BadRequest, match="does not belong"):
        reader.decrypt("acme", "message-body", tampered, **REC)
    other_nonce = base64.urlsafe_b64encode(b"\x00" * 12).decode().rstrip("=")
    with pytest.raises(BadRequest, match="does not belong"):
        reader.decrypt("acme", "message-body", f"enc:v2:{wrapped}:{other_nonce}:{sealed}", **REC)
    short_nonce = base64.urlsafe_b64encode(b"\x00" * 4).decode().rstrip("=")  # AES-GCM needs 8 bytes at least
    with pytest.raises(BadRequest, match="malformed"):
        reader.decrypt("acme", "message-body", f"enc:v2:{wrapped}:{short_nonce}:{sealed}", **REC)
    assert reader.decrypt("acme", "message-body", value, **REC) == "secret"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("plain text", "not an encrypted field"),
        ("enc:v2:onlyonepart", "malformed"),
        ("enc:v2:a:b:c:d", "malformed"),
        ("enc:v2:a:b:c=d", "malformed"),
        ("enc:v1:a:b:c", "retired"),
    ],
)
def test_values_that_are_not_encrypted_fields_are_bad_requests(
    kms: KMSClient, key_id: str, value: str, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        FieldCipher(key_id, client=kms).decrypt("acme", "message-body", value, **REC)


def test_a_value_moved_to_another_record_or_field_does_not_decrypt(kms: KMSClient, key_id: str) -> None:
    cipher = FieldCipher(key_id, client=kms)
    value = cipher.encrypt("acme", "message-body", "secret", record="T#acme#MSG#m-1", field="body")

    reader = FieldCipher(key_id, client=kms)  # a cold reader: the data key is unwrapped by KMS first
    with pytest.raises(BadRequest, match="does not belong"):
        reader.decrypt("acme", "message-body", value, record="T#acme#MSG#m-2", field="body")
    with pytest.raises(BadRequest, match="does not belong"):
        reader.decrypt("acme", "message-body", value, record="T#acme#MSG#m-1", field="subject")
    assert reader.decrypt("acme", "message-body", value, record="T#acme#MSG#m-1", field="body") == "secret"


# ---------------------------------------------------------------- TenantSecrets and TenantKeys


@pytest.fixture
def secrets(aws: None) -> SecretsManagerClient:
    client: SecretsManagerClient = boto3.client("secretsmanager", region_name=REGION)
    return client


def _expected(version: str, secret: str, kind: str, value: str) -> str:
    key = base64.b64decode(json.loads(secret)["keys"][version])
    framed = b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in (kind, value))
    return f"h{version}:" + hmac.new(key, framed, hashlib.sha256).hexdigest()


def _rotate(secrets: SecretsManagerClient, tenant: str, old: str) -> str:
    doc = json.loads(old)
    doc["keys"]["2"] = json.loads(new_keyring("2"))["keys"]["2"]
    doc["current"] = "2"
    rotated = json.dumps(doc)
    secrets.put_secret_value(SecretId=f"{PREFIX}{tenant}/hmac", SecretString=rotated)
    return rotated


@pytest.fixture
def acme_secret(secrets: SecretsManagerClient) -> str:
    secret = new_keyring()
    secrets.create_secret(Name=f"{PREFIX}acme/hmac", SecretString=secret)
    secrets.create_secret(Name=f"{PREFIX}globex/hmac", SecretString=new_keyring())
    return secret


def _keys(max_age: int = 300) -> TenantKeys:
    return TenantKeys(TenantSecrets(PREFIX, max_age=max_age))


def test_digests_are_stable_versioned_domain_separated_and_per_tenant(acme_secret: str) -> None:
    keys = _keys()
    digest = keys.digest("acme", "email", "jane@example.com")

    assert digest == _expected("1", acme_secret, "email", "jane@example.com")
    assert digest.startswith("h1:")
    assert _keys().digest("acme", "email", "jane@example.com") == digest
    assert keys.digest("acme", "phone", "jane@example.com") != digest
    assert keys.digest("acme", "email", "john@example.com") != digest
    assert keys.digest("globex", "email", "jane@example.com") != digest
    assert keys.candidates("acme", "email", "jane@example.com") == [digest]


def test_rotation_adds_a_version_and_old_digests_still_match(secrets: SecretsManagerClient, acme_secret: str) -> None:
    old = _keys(max_age=0).digest("acme", "email", "jane@example.com")

    rotated = _rotate(secrets, "acme", acme_secret)
    keys = _keys(max_age=0)
    new = keys.digest("acme", "email", "jane@example.com")

    assert new == _expected("2", rotated, "email", "jane@example.com")
    assert new.startswith("h2:") and new != old
    assert keys.candidates("acme", "email", "jane@example.com") == [old, new]
    assert _keys(max_age=0).digest("globex", "email", "x").startswith("h1:")  # other tenants unaffected


def test_secrets_are_cached_for_max_age(secrets: SecretsManagerClient, acme_secret: str) -> None:
    keys = _keys(max_age=300)
    before = keys.digest("acme", "email", "v")
    _rotate(secrets, "acme", acme_secret)
    assert keys.digest("acme", "email", "v") == before  # within max_age the cached secret is used

    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    assert keys.digest("acme", "email", "v").startswith("h2:")


def test_a_missing_secret_is_secret_not_found(secrets: SecretsManagerClient) -> None:
    with pytest.raises(SecretNotFound, match=f"{PREFIX}initech/webhook/standard"):
        TenantSecrets(PREFIX).all_versions("initech", "webhook/standard")


def test_any_kind_of_tenant_secret_is_read_the_same_way(secrets: SecretsManagerClient) -> None:
    key = b"w" * 32
    doc = {"current": "1", "keys": {"1": base64.b64encode(key).decode()}}
    secrets.create_secret(Name=f"{PREFIX}acme/webhook/standard", SecretString=json.dumps(doc))
    secrets.create_secret(
        Name=f"{PREFIX}acme/provider/twilio", SecretString=json.dumps({"current": "3", "keys": {"3": "AC123:token"}})
    )

    assert TenantSecrets(PREFIX).all_versions("acme", "webhook/standard") == {"1": key}
    assert TenantSecrets(PREFIX).current_text("acme", "provider/twilio") == ("3", "AC123:token")


@pytest.mark.parametrize(
    "document",
    [
        {"current": "2", "keys": {"1": base64.b64encode(b"k" * 32).decode()}},
        {"keys": {"1": base64.b64encode(b"k" * 32).decode()}},
        ["not", "an", "object"],
        {"current": "1", "keys": ["x"]},
    ],
    ids=["current-missing-from-keys", "no-current", "not-an-object", "keys-not-an-object"],
)
def test_malformed_secrets_are_configuration_errors(secrets: SecretsManagerClient, document: Any) -> None:
    secrets.create_secret(Name=f"{PREFIX}acme/hmac", SecretString=json.dumps(document))
    with pytest.raises(ConfigurationError, match=f"{PREFIX}acme/hmac is malformed"):
        _keys(max_age=0).digest("acme", "email", "v")


def test_a_short_hmac_key_is_refused(secrets: SecretsManagerClient) -> None:
    doc = {"current": "1", "keys": {"1": base64.b64encode(b"k" * 16).decode()}}
    secrets.create_secret(Name=f"{PREFIX}acme/hmac", SecretString=json.dumps(doc))
    with pytest.raises(ConfigurationError, match="fewer than 32"):
        _keys(max_age=0).digest("acme", "email", "v")


def test_an_invalid_tenant_never_reaches_secrets_manager() -> None:
    with pytest.raises(BadRequest):
        _keys().digest("../other", "email", "v")
