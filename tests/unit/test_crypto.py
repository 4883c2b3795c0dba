"""The parts of shared.crypto that run without AWS: domain-separated HMAC digests over injected keyrings, and
field encryption bound to tenant, purpose, record and field, with an in-memory stand-in for KMS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import types
from typing import Any

import pytest

from shared import crypto
from shared.crypto import FieldCipher, TenantKeys
from shared.errors import BadRequest, ConfigurationError
from shared.secrets import TenantSecrets, new_keyring
from tests.fakes import FakeSecretStore

KEY_1 = b"\x01" * 32
KEY_2 = b"\x02" * 32


def keyring(current: str, keys: dict[str, bytes]) -> str:
    return json.dumps({"current": current, "keys": {v: base64.b64encode(k).decode() for v, k in keys.items()}})


def framed(*parts: str) -> bytes:
    return b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)


def expected_digest(version: str, key: bytes, kind: str, value: str) -> str:
    return f"h{version}:" + hmac.new(key, framed(kind, value), hashlib.sha256).hexdigest()


def tenant_keys(documents: dict[str, Any], prefix: str = "p/") -> TenantKeys:
    return TenantKeys(TenantSecrets(prefix, fetch=FakeSecretStore(documents)))


class InvalidCiphertextException(Exception):
    pass


class FakeKms:
    """generate_data_key / decrypt with the encryption context enforced, like KMS."""

    exceptions = types.SimpleNamespace(InvalidCiphertextException=InvalidCiphertextException)

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
            raise InvalidCiphertextException("InvalidCiphertextException")
        return {"Plaintext": plain, "KeyId": KeyId}


# ---- HMAC -------------------------------------------------------------------------------------------------


def test_digest_uses_the_current_hmac_key_and_tags_its_version() -> None:
    fetch = FakeSecretStore({"ats/tenants/acme/hmac": keyring("2", {"1": KEY_1, "2": KEY_2})})
    keys = TenantKeys(TenantSecrets("ats/tenants/", fetch=fetch))

    digest = keys.digest("acme", "email", "jane@acme.example")

    assert digest == expected_digest("2", KEY_2, "email", "jane@acme.example")
    assert digest.startswith("h2:") and len(digest) == len("h2:") + 64
    assert fetch.asked == ["ats/tenants/acme/hmac"]


def test_an_emails_digest_never_equals_a_phones_for_the_same_text() -> None:
    keys = tenant_keys({"p/acme/hmac": keyring("1", {"1": KEY_1})})

    assert keys.digest("acme", "email", "+4915112345678") != keys.digest("acme", "phone", "+4915112345678")


def test_the_kind_and_value_cannot_be_shifted_into_each_other() -> None:
    # Without a length prefix, ("email", "x") and ("emailx", "") or ("emai", "lx") would hash the same bytes.
    keys = tenant_keys({"p/acme/hmac": keyring("1", {"1": KEY_1})})

    digests = {
        keys.digest("acme", "email", "lx"),
        keys.digest("acme", "emaill", "x"),
        keys.digest("acme", "emaillx", ""),
    }
    assert len(digests) == 3


def test_digest_is_deterministic_and_value_sensitive() -> None:
    keys = tenant_keys({"p/acme/hmac": keyring("1", {"1": KEY_1})})

    assert keys.digest("acme", "email", "a") == keys.digest("acme", "email", "a")
    assert keys.digest("acme", "email", "a") != keys.digest("acme", "email", "b")


def test_tenants_with_different_keys_get_different_digests() -> None:
    keys = tenant_keys({"p/acme/hmac": keyring("1", {"1": KEY_1}), "p/globex/hmac": keyring("1", {"1": KEY_2})})

    assert keys.digest("acme", "email", "same") != keys.digest("globex", "email", "same")


def test_candidates_cover_every_held_version_oldest_first() -> None:
    keys = tenant_keys({"p/acme/hmac": keyring("2", {"2": KEY_2, "1": KEY_1})})

    assert keys.candidates("acme", "email", "v") == [
        expected_digest("1", KEY_1, "email", "v"),
        expected_digest("2", KEY_2, "email", "v"),
    ]


def test_a_digest_made_before_rotation_is_still_a_candidate() -> None:
    before = tenant_keys({"p/acme/hmac": keyring("1", {"1": KEY_1})}).digest("acme", "email", "v")
    after = tenant_keys({"p/acme/hmac": keyring("2", {"1": KEY_1, "2": KEY_2})})

    assert after.digest("acme", "email", "v") != before
    assert before in after.candidates("acme", "email", "v")


@pytest.mark.parametrize("length", [0, 16, 31])
def test_a_key_shorter_than_32_bytes_is_refused(length: int) -> None:
    short = keyring("1", {"1": b"k" * length}) if length else json.dumps({"current": "1", "keys": {"1": "="}})
    keys = tenant_keys({"p/acme/hmac": short})

    with pytest.raises(ConfigurationError, match="p/acme/hmac"):
        keys.digest("acme", "email", "v")
    with pytest.raises(ConfigurationError, match="p/acme/hmac"):
        keys.candidates("acme", "email", "v")


def test_a_short_old_version_is_refused_too() -> None:
    keys = tenant_keys({"p/acme/hmac": keyring("2", {"1": b"k" * 8, "2": KEY_2})})

    with pytest.raises(ConfigurationError, match="version 1"):
        keys.candidates("acme", "email", "v")


@pytest.mark.parametrize("kind", ["", "Email", "e mail", "x" * 65])
def test_an_invalid_digest_kind_is_refused(kind: str) -> None:
    keys = tenant_keys({"p/acme/hmac": keyring("1", {"1": KEY_1})})
    with pytest.raises(ConfigurationError, match="digest kind"):
        keys.digest("acme", kind, "v")


def test_an_invalid_tenant_is_refused_before_any_lookup() -> None:
    fetch = FakeSecretStore({})
    with pytest.raises(BadRequest):
        TenantKeys(TenantSecrets("p/", fetch=fetch)).digest("../other", "email", "v")
    assert fetch.asked == []


def test_a_new_keyring_holds_one_random_256_bit_key_usable_for_hmac() -> None:
    document = json.loads(new_keyring("3"))
    assert document["current"] == "3"
    assert len(base64.b64decode(document["keys"]["3"])) == 32
    assert json.loads(new_keyring())["keys"]["1"] != json.loads(new_keyring())["keys"]["1"]
    assert tenant_keys({"p/acme/hmac": new_keyring()}).digest("acme", "email", "v").startswith("h1:")


# ---- field encryption -------------------------------------------------------------------------------------

R1 = {"record": "T#acme#CAND#c-1", "field": "email"}


@pytest.fixture
def kms() -> FakeKms:
    return FakeKms()


@pytest.fixture
def cipher(kms: FakeKms) -> FieldCipher:
    return FieldCipher("alias/data", client=kms)  # type: ignore[arg-type]


def test_encrypt_then_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "candidate-pii", "jane@acme.example", **R1)

    assert sealed.startswith("enc:v2:")
    assert "jane" not in sealed
    assert len(sealed[len("enc:v2:") :].split(":")) == 3
    assert cipher.decrypt("acme", "candidate-pii", sealed, **R1) == "jane@acme.example"


def test_each_encryption_uses_a_fresh_nonce(cipher: FieldCipher) -> None:
    assert cipher.encrypt("acme", "p", "same", **R1) != cipher.encrypt("acme", "p", "same", **R1)


def test_a_value_moved_to_another_record_does_not_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "p", "secret", record="T#acme#CAND#c-1", field="email")

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("acme", "p", sealed, record="T#acme#CAND#c-2", field="email")


def test_a_value_moved_to_another_field_of_the_same_record_does_not_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "p", "secret", record="T#acme#CAND#c-1", field="email")

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("acme", "p", sealed, record="T#acme#CAND#c-1", field="phone")


def test_record_and_field_boundaries_are_unambiguous(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "p", "secret", record="r-1", field="ab")

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("acme", "p", sealed, record="r-1a", field="b")


def test_a_value_of_another_purpose_does_not_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "message-body", "secret", **R1)
    assert cipher.decrypt("acme", "message-body", sealed, **R1) == "secret"

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("acme", "candidate-email", sealed, **R1)


def test_a_value_copied_to_another_tenant_does_not_decrypt_even_with_the_data_key_cached(
    cipher: FieldCipher, kms: FakeKms
) -> None:
    sealed = cipher.encrypt("acme", "p", "secret", **R1)
    assert cipher.decrypt("acme", "p", sealed, **R1) == "secret"  # acme's unwrapped key is now cached

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("globex", "p", sealed, **R1)
    # The cache is keyed by (wrapped key, tenant, purpose): globex's attempt went to KMS, which refused it.
    assert kms.decrypted == 2


def test_a_tampered_ciphertext_does_not_decrypt(cipher: FieldCipher) -> None:
    sealed = cipher.encrypt("acme", "p", "secret", **R1)
    wrapped, nonce, body = sealed[len("enc:v2:") :].split(":")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]

    with pytest.raises(BadRequest, match="does not belong"):
        cipher.decrypt("acme", "p", f"enc:v2:{wrapped}:{nonce}:{flipped}", **R1)


def test_v1_values_are_refused(cipher: FieldCipher) -> None:
    # v1 bound only tenant and purpose: accepting it would let a value moved between records decrypt.
    v2 = cipher.encrypt("acme", "p", "secret", **R1)

    with pytest.raises(BadRequest, match="retired"):
        cipher.decrypt("acme", "p", "enc:v1:" + v2[len("enc:v2:") :], **R1)


@pytest.mark.parametrize("value", ["plain text", "enc:v3:a:b:c"])
def test_a_value_that_is_not_an_encrypted_field_is_refused(cipher: FieldCipher, value: str) -> None:
    with pytest.raises(BadRequest, match="not an encrypted field"):
        cipher.decrypt("acme", "p", value, **R1)


@pytest.mark.parametrize("value", ["enc:v2:abc", "enc:v2:a:b", "enc:v2:a:b:c:d"])
def test_a_malformed_encrypted_field_is_refused(cipher: FieldCipher, value: str) -> None:
    with pytest.raises(BadRequest, match="malformed"):
        cipher.decrypt("acme", "p", value, **R1)


@pytest.mark.parametrize(("record", "field"), [("", "email"), ("r", ""), ("r" * 513, "email"), ("r", "f" * 129)])
def test_record_and_field_are_required(cipher: FieldCipher, kms: FakeKms, record: str, field: str) -> None:
    with pytest.raises(BadRequest, match="record"):
        cipher.encrypt("acme", "p", "x", record=record, field=field)
    assert kms.generated == 0


def test_encrypting_for_an_invalid_tenant_is_refused(cipher: FieldCipher, kms: FakeKms) -> None:
    with pytest.raises(BadRequest):
        cipher.encrypt("Not A Tenant", "p", "x", **R1)
    assert kms.generated == 0


# ---- data-key caches --------------------------------------------------------------------------------------


def test_data_keys_are_reused_per_tenant_and_purpose(cipher: FieldCipher, kms: FakeKms) -> None:
    cipher.encrypt("acme", "p", "1", **R1)
    cipher.encrypt("acme", "p", "2", record="other", field="f")
    cipher.encrypt("acme", "q", "3", **R1)
    cipher.encrypt("globex", "p", "4", **R1)

    assert kms.generated == 3


def test_a_fresh_cipher_unwraps_once_then_uses_its_cache(cipher: FieldCipher, kms: FakeKms) -> None:
    sealed = cipher.encrypt("acme", "p", "secret", **R1)
    other = FieldCipher("alias/data", client=kms)  # type: ignore[arg-type]

    assert other.decrypt("acme", "p", sealed, **R1) == "secret"
    assert other.decrypt("acme", "p", sealed, **R1) == "secret"
    assert kms.decrypted == 1


def test_the_decrypt_cache_is_bounded(kms: FakeKms, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = FieldCipher("alias/data", client=kms)  # type: ignore[arg-type]
    sealed = [writer.encrypt("acme", f"purpose-{n}", "x", **R1) for n in range(300)]
    reader = FieldCipher("alias/data", client=kms)  # type: ignore[arg-type]

    for n, value in enumerate(sealed):
        reader.decrypt("acme", f"purpose-{n}", value, **R1)

    assert len(reader._decrypt_keys) == 256
    kms.decrypted = 0
    reader.decrypt("acme", "purpose-0", sealed[0], **R1)  # evicted: unwrapped again
    reader.decrypt("acme", "purpose-299", sealed[299], **R1)  # recent: cached
    assert kms.decrypted == 1


def test_the_encrypt_cache_is_bounded(cipher: FieldCipher, kms: FakeKms) -> None:
    for n in range(300):
        cipher.encrypt("acme", f"purpose-{n}", "x", **R1)
    assert len(cipher._encrypt_keys) == 256


def test_cached_data_keys_expire(cipher: FieldCipher, kms: FakeKms, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(crypto.time, "monotonic", lambda: now[0])
    sealed = cipher.encrypt("acme", "p", "secret", **R1)
    cipher.decrypt("acme", "p", sealed, **R1)
    assert (kms.generated, kms.decrypted) == (1, 1)

    now[0] += 299
    cipher.encrypt("acme", "p", "again", **R1)
    cipher.decrypt("acme", "p", sealed, **R1)
    assert (kms.generated, kms.decrypted) == (1, 1)

    now[0] += 2  # past five minutes
    cipher.encrypt("acme", "p", "again", **R1)
    cipher.decrypt("acme", "p", sealed, **R1)
    assert (kms.generated, kms.decrypted) == (2, 2)


def test_an_encryption_data_key_is_replaced_after_1000_uses(cipher: FieldCipher, kms: FakeKms) -> None:
    for n in range(1001):
        cipher.encrypt("acme", "p", str(n), **R1)
    assert kms.generated == 2
