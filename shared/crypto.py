"""Field-level envelope encryption with KMS data keys (AES-256-GCM) and keyed HMAC with versioned tenant keys.

Encrypted fields are self-describing strings, `enc:v1:<wrapped data key>:<nonce>:<ciphertext>` (base64url
parts), bound to their tenant and purpose through the KMS encryption context and the GCM associated data,
so a value copied into another tenant's record does not decrypt.

HMAC keys live in Secrets Manager, one secret per tenant, `{"current": "2", "keys": {"1": "<b64>", ...}}`.
Digests carry their key version (`h2:<hex>`), so keys rotate without losing the ability to match old data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.errors import BadRequest, ConfigurationError
from shared.keys import check_tenant

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

_PREFIX = "enc:v1:"
_NOT_THIS_TENANT = "encrypted field does not belong to this tenant and purpose"
_DATA_KEY_TTL_SECONDS = 300
_DATA_KEY_MAX_USES = 1000


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldCipher:
    """Encrypts and decrypts single fields under data keys from one KMS key, caching keys briefly."""

    def __init__(self, key_id: str, client: KMSClient | None = None) -> None:
        self._key_id = key_id
        self._client = client
        self._encrypt_keys: dict[tuple[str, str], tuple[bytes, bytes, float, int]] = {}
        self._decrypt_keys: dict[bytes, bytes] = {}

    @property
    def client(self) -> KMSClient:
        if self._client is None:
            from shared.aws import client

            self._client = client("kms")
        return self._client

    def _data_key(self, tenant: str, purpose: str) -> tuple[bytes, bytes]:
        cached = self._encrypt_keys.get((tenant, purpose))
        if cached and time.monotonic() - cached[2] < _DATA_KEY_TTL_SECONDS and cached[3] < _DATA_KEY_MAX_USES:
            self._encrypt_keys[(tenant, purpose)] = (cached[0], cached[1], cached[2], cached[3] + 1)
            return cached[0], cached[1]
        response = self.client.generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext={"tenant": tenant, "purpose": purpose}
        )
        plain, wrapped = response["Plaintext"], response["CiphertextBlob"]
        self._encrypt_keys[(tenant, purpose)] = (plain, wrapped, time.monotonic(), 1)
        return plain, wrapped

    def encrypt(self, tenant: str, purpose: str, plaintext: str) -> str:
        """Encrypt `plaintext` for `tenant`; `purpose` (e.g. "message-body") is bound into the ciphertext."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        check_tenant(tenant)
        key, wrapped = self._data_key(tenant, purpose)
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), f"{tenant}|{purpose}".encode())
        return _PREFIX + ":".join(_b64e(part) for part in (wrapped, nonce, sealed))

    def decrypt(self, tenant: str, purpose: str, value: str) -> str:
        """Decrypt a value made by `encrypt` for the same tenant and purpose; BadRequest if it is not one."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not value.startswith(_PREFIX):
            raise BadRequest("value is not an encrypted field")
        try:
            wrapped, nonce, sealed = (_b64d(part) for part in value[len(_PREFIX) :].split(":"))
        except ValueError:
            raise BadRequest("encrypted field is malformed") from None
        key = self._decrypt_keys.get(wrapped)
        if key is None:
            try:
                key = self.client.decrypt(
                    CiphertextBlob=wrapped,
                    KeyId=self._key_id,
                    EncryptionContext={"tenant": tenant, "purpose": purpose},
                )["Plaintext"]
            except self.client.exceptions.InvalidCiphertextException:
                # The data key was wrapped for another tenant or purpose (KMS checks the encryption context).
                raise BadRequest(_NOT_THIS_TENANT) from None
            self._decrypt_keys[wrapped] = key
        try:
            return AESGCM(key).decrypt(nonce, sealed, f"{tenant}|{purpose}".encode()).decode()
        except InvalidTag:
            raise BadRequest(_NOT_THIS_TENANT) from None
        except ValueError:  # a nonce of the wrong length: not something `encrypt` made
            raise BadRequest("encrypted field is malformed") from None


class TenantKeys:
    """Versioned HMAC keys per tenant, read from Secrets Manager through Powertools parameters (cached)."""

    def __init__(self, secret_prefix: str, fetch: Callable[[str], Any] | None = None, max_age: int = 300) -> None:
        self._prefix = secret_prefix
        self._fetch = fetch
        self._max_age = max_age

    def _load(self, tenant: str) -> tuple[str, dict[str, bytes]]:
        name = f"{self._prefix}{check_tenant(tenant)}"
        if self._fetch is not None:
            raw = self._fetch(name)
        else:
            from aws_lambda_powertools.utilities import parameters

            raw = parameters.get_secret(name, max_age=self._max_age)
        doc = json.loads(raw) if isinstance(raw, str | bytes) else raw
        try:
            keys = {str(v): base64.b64decode(k) for v, k in doc["keys"].items()}
            current = str(doc["current"])
            keys[current]  # noqa: B018 - the current version must exist
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"HMAC secret {name} is malformed: {exc.__class__.__name__}") from None
        return current, keys

    def digest(self, tenant: str, value: str) -> str:
        """The keyed digest of `value` under the tenant's current key, tagged with the key version."""
        current, keys = self._load(tenant)
        return _digest(current, keys[current], value)

    def candidates(self, tenant: str, value: str) -> list[str]:
        """Digests of `value` under every key version still held: look-ups match data hashed before a rotation."""
        _, keys = self._load(tenant)
        return [_digest(version, key, value) for version, key in sorted(keys.items())]


def _digest(version: str, key: bytes, value: str) -> str:
    return f"h{version}:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def new_hmac_secret(version: str = "1") -> str:
    """A fresh secret document with one random 256-bit key (tenant onboarding, local runtime)."""
    return json.dumps({"current": version, "keys": {version: base64.b64encode(os.urandom(32)).decode()}})
