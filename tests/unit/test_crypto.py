"""The parts of shared.crypto that run without AWS: HMAC digests with injected keys, fresh secrets, and field
encryption with an in-memory stand-in for KMS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import pytest

from shared.crypto import FieldCipher, TenantKeys, new_hmac_secret
from shared.errors import BadRequest, ConfigurationError

KEY_1 = b"\x01" * 32
KEY_2 = b"\x02" * 32


def secret(current: str, keys: dict[str, bytes]) -> str:
    return json.dumps({"current": current, "keys": {v: base64.b64encode(k).decode() for v, k in keys.items()}})


def expected_digest(version: str, key: bytes, value: str) -> str:
    return f"h{version}:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class FakeSecrets:
    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.asked: list[str] = []

    def __call__(self, name: str) -> Any:
        self.asked.append(name)
        return self.documents[name]


class FakeKms:
    """generate_data_key / decrypt with the encryption context enforced, like KMS."""

    def __init__(self) -> None:
        self.wrapped: dict[bytes, tuple[bytes, dict[str, str]]] = {}
        self.generated = 0
        self.decrypted = 0

    def generate_data_key(self, *, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]) -> dict[str, Any]:  # noqa: N803
        assert KeySpec == "AES_256"
        self.generated += 1
        plain, blob = os.urandom(32), os.urandom(48)
        self.wrapped[blob] = (plain, dict(EncryptionContext))
        return {"Plaintext": plain, "CiphertextBlob": blob, "KeyId": KeyId}

    def decrypt(self, *, CiphertextBlob: bytes, KeyId: str, EncryptionContext: dict[str, str]) -> dict[str, Any]:  # noqa: N803
        self.decrypted += 1
        plain, context = self.wrapped[CiphertextBlob]
        if context != EncryptionContext:
            raise PermissionError("InvalidCiphertextException")
        return {"Plaintext": plain, "KeyId": KeyId}


# ---- HMAC -------------------------------------------------------------------------------------------------


def test_digest_uses_the_current_key_and_tags_its_version() -> None:
    fetch = FakeSecrets({"ats/tenants/acme": secret("2", {"1": KEY_1, "2": KEY_2})})
    keys = TenantKeys("ats/tenants/", fetch=fetch)

    digest = keys.digest("acme", "jane@acme.example")

    assert digest == expected_digest("2", KEY_2, "jane@acme.example")
    assert digest.startswith("h2:")
    assert len(digest) == len("h2:") + 64
    assert fetch.asked == ["ats/tenants/acme"]


def test_digest_is_deterministic_and_value_sensitive() -> None:
    keys = TenantKeys("p/", fetch=FakeSecrets({"p/acme": secret("1", {"1": KEY_1})}))

    assert keys.digest("acme", "a") == keys.digest("acme", "a")
    assert keys.digest("acme", "a") != keys.digest("acme", "b")


def test_tenants_with_different_keys_get_different_digests() -> None:
    fetch = FakeSecrets({"p/acme": secret("1", {"1": KEY_1}), "p/globex": secret("1", {"1": KEY_2})})
    keys = TenantKeys("p/", fetch=fetch)

    assert keys.digest("acme", "same value") != keys.digest("globex", "same value")


def test_candidates_cover_every_key_version_in_order() -> None:
    keys = TenantKeys("p/", fetch=FakeSecrets({"p/acme": secret("2", {"2": KEY_2, "1": KEY_1})}))

    assert keys.candidates("acme", "v") == [expected_digest("1", KEY_1, "v"), expected_digest("2", KEY_2, "v")]


def test_a_digest_made_before_rotation_is_still_a_candidate() -> None:
    before = TenantKeys("p/", fetch=FakeSecrets({"p/acme": secret("1", {"1": KEY_1})})).digest("acme", "v")
    after = TenantKeys("p/", fetch=FakeSecrets({"p/acme": secret("2", {"1": KEY_1, "2": KEY_2})}))

    assert after.digest("acme", "v") != before
    assert before in after.candidates("acme", "v")


def test_the_secret_may_arrive_already_parsed() -> None:
    document = json.loads(secret("1", {"1": KEY_1}))
    keys = TenantKeys("p/", fetch=FakeSecrets({"p/acme": document}))

    assert keys.digest("acme", "v") == expected_digest("1", KEY_1, "v")


@pytest.mark.parametrize(
    "document",
    [
        {"current": "2", "keys": {"1": base64.b64encode(KEY_1).decode()}},
        {"keys": {"1": base64.b64encode(KEY_1).decode()}},
        {"current": "1"},
        {"current": "1", "keys": {"1": "not base64!"}},
        "not a document",
    ],
    ids=["current-missing-from-keys", "no-current", "no-keys", "bad-base64", "not-an-object"],
)
def test_a_malformed_secret_is_a_configuration_error(document: Any) -> None:
    keys = TenantKeys("p/", fetch=FakeSecrets({"p/acme": json.dumps(document)}))

    with pytest.raises(ConfigurationError, match="p/acme"):
        keys.digest("acme", "v")


def test_an_invalid_tenant_is_refused_before_any_lookup() -> None:
    fetch = FakeSecrets({})
    keys = TenantKeys("p/", fetch=fetch)

    with pytest.raises(BadRequest):
        keys.digest("../other", "v")
    assert fetch.asked == []


def test_new_hmac_secret_holds_one_random_256_bit_key() -> None:
    document = json.loads(new_hmac_secret("3"))

    assert document["current"] == "3"
    assert list(document["keys"]) == ["3"]
    assert len(base64.b64decode(document["keys"]["3"])) == 32


def test_new_hmac_secrets_differ_and_are_usable() -> None:
    first, second = new_hmac_secret(), new_hmac_secret()

    assert json.loads(first)["current"] == "1"
    assert json.loads(first)["keys"]["1"] != json.loads(second)["keys"]["1"]
    keys = TenantKeys("p/", fetch=FakeSecrets({"p/acme": first}))
    assert keys.digest("acme", "v").startswith("h1:")


# ---- field encryption -------------------------------------------------------------------------------------


@pytest.fixture
def kms() -> FakeKms:
    return FakeKms()


@pytest.fixture
def cipher(kms: FakeKms) -> FieldCipher:
    return FieldCipher("alias/data", client=kms)  # type: ignore[arg-type]


def test_encrypt_then_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "message-body", "Dear Jane, ...")

    assert sealed.startswith("enc:v1:")
    assert "Dear Jane" not in sealed
    assert len(sealed[len("enc:v1:") :].split(":")) == 3
    assert cipher.decrypt("acme", "message-body", sealed) == "Dear Jane, ..."


def test_each_encryption_uses_a_fresh_nonce(cipher: FieldCipher) -> None:
    assert cipher.encrypt("acme", "p", "same") != cipher.encrypt("acme", "p", "same")


def test_data_keys_are_cached_per_tenant_and_purpose(cipher: FieldCipher, kms: FakeKms) -> None:
    cipher.encrypt("acme", "p", "1")
    cipher.encrypt("acme", "p", "2")
    cipher.encrypt("acme", "q", "3")
    cipher.encrypt("globex", "p", "4")

    assert kms.generated == 3


def test_a_fresh_cipher_decrypts_through_kms(cipher: FieldCipher, kms: FakeKms) -> None:
    sealed = cipher.encrypt("acme", "p", "secret")
    other = FieldCipher("alias/data", client=kms)  # type: ignore[arg-type]

    assert other.decrypt("acme", "p", sealed) == "secret"
    assert other.decrypt("acme", "p", sealed) == "secret"
    assert kms.decrypted == 1


# The AES-GCM associated data binds tenant and purpose. These tests decrypt once legitimately first, so the data
# key is cached and the binding is checked by AES-GCM itself (see the report: a first, uncached cross-tenant
# decrypt surfaces KMS's own error instead of BadRequest).


def test_a_value_of_another_purpose_does_not_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "message-body", "secret")
    assert cipher.decrypt("acme", "message-body", sealed) == "secret"

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("acme", "candidate-email", sealed)


def test_a_value_copied_to_another_tenant_does_not_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "p", "secret")
    assert cipher.decrypt("acme", "p", sealed) == "secret"

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("globex", "p", sealed)


def test_a_tampered_ciphertext_does_not_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "p", "secret")
    assert cipher.decrypt("acme", "p", sealed) == "secret"
    wrapped, nonce, body = sealed[len("enc:v1:") :].split(":")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("acme", "p", f"enc:v1:{wrapped}:{nonce}:{flipped}")


@pytest.mark.parametrize("value", ["plain text", "enc:v2:a:b:c"])
def test_a_value_that_is_not_an_encrypted_field_is_refused(cipher: FieldCipher, value: str) -> None:
    with pytest.raises(BadRequest, match="not an encrypted field"):
        cipher.decrypt("acme", "p", value)


@pytest.mark.parametrize("value", ["enc:v1:abc", "enc:v1:a:b", "enc:v1:a:b:c:d"])
def test_a_malformed_encrypted_field_is_refused(cipher: FieldCipher, value: str) -> None:
    with pytest.raises(BadRequest, match="malformed"):
        cipher.decrypt("acme", "p", value)


def test_encrypting_for_an_invalid_tenant_is_refused(cipher: FieldCipher, kms: FakeKms) -> None:
    with pytest.raises(BadRequest):
        cipher.encrypt("Not A Tenant", "p", "x")
    assert kms.generated == 0
