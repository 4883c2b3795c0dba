"""Field-level envelope encryption with KMS data keys (AES-256-GCM), and keyed HMAC digests with versioned
tenant keys.

Encrypted fields are self-describing strings, `enc:v2:<wrapped data key>:<nonce>:<ciphertext>` (base64url
parts). The data key is wrapped under the KMS encryption context {tenant, purpose}; the AES-GCM associated data
binds tenant, purpose, record and field, so a value copied into another tenant's record, another record of the
same tenant, or another field of the same record does not decrypt. `enc:v1:` values (no record binding) are
refused: accepting them would let a value moved between records decrypt unnoticed (see docs/decisions.md).

HMAC keys are the tenant secret of kind `hmac` (`shared.secrets`). A digest is
`h<version>:<hex HMAC-SHA256 of (length-prefixed kind, value)>`: the kind (`email`, `phone`, ...) separates the
domains, so an email's digest never equals a phone's, and the version lets keys rotate without losing matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from shared.aws import LazyClient
from shared.errors import BadRequest, ConfigurationError
from shared.keys import check_tenant

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

    from shared.secrets import TenantSecrets

_PREFIX = "enc:v2:"
_RETIRED_PREFIXES = ("enc:v1:",)
_NOT_THIS_FIELD = "encrypted field does not belong to this tenant, purpose, record and field"
_DATA_KEY_TTL_SECONDS = 300
_DATA_KEY_MAX_USES = 1000
_CACHE_SIZE = 256
_MAX_RECORD = 512
_MAX_FIELD = 128

HMAC_SECRET_KIND = "hmac"
MIN_HMAC_KEY_BYTES = 32
_DIGEST_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

K = TypeVar("K")
V = TypeVar("V")


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _framed(*parts: str) -> bytes:
    """Length-prefixed concatenation: no choice of parts can produce another choice's bytes."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


class _TtlLru(Generic[K, V]):
    """A small LRU map whose entries also expire `ttl` seconds after they were stored."""

    def __init__(self, size: int, ttl: float) -> None:
        self._size = size
        self._ttl = ttl
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        if time.monotonic() - found[1] >= self._ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V) -> None:
        self._items[key] = (value, time.monotonic())
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(slots=True)
class _DataKey:
    plain: bytes = field(repr=False)
    wrapped: bytes
    uses: int = 1


class FieldCipher:
    """Encrypts and decrypts single fields under data keys from one KMS key, caching data keys briefly.

    Encryption reuses a data key per (tenant, purpose) for at most 5 minutes and 1000 values; decryption caches
    unwrapped keys per (wrapped key, tenant, purpose) for 5 minutes. Both caches hold at most 256 keys.
    """

    def __init__(self, key_id: str, client: KMSClient | None = None) -> None:
        self._key_id = key_id
        self._client = client
        self._encrypt_keys: _TtlLru[tuple[str, str], _DataKey] = _TtlLru(_CACHE_SIZE, _DATA_KEY_TTL_SECONDS)
        self._decrypt_keys: _TtlLru[tuple[bytes, str, str], bytes] = _TtlLru(_CACHE_SIZE, _DATA_KEY_TTL_SECONDS)

    client: LazyClient[KMSClient] = LazyClient("kms")

    def _data_key(self, tenant: str, purpose: str) -> tuple[bytes, bytes]:
        cached = self._encrypt_keys.get((tenant, purpose))
        if cached is not None and cached.uses < _DATA_KEY_MAX_USES:
            cached.uses += 1
            return cached.plain, cached.wrapped
        response = self.client.generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext={"tenant": tenant, "purpose": purpose}
        )
        plain, wrapped = response["Plaintext"], response["CiphertextBlob"]
        self._encrypt_keys.put((tenant, purpose), _DataKey(plain, wrapped))
        return plain, wrapped

    def encrypt(self, tenant: str, purpose: str, plaintext: str, *, record: str, field: str) -> str:
        """Encrypt `plaintext` as `field` of `record` (e.g. the record's key) for `tenant` and `purpose`."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aad = _associated_data(tenant, purpose, record, field)
        key, wrapped = self._data_key(tenant, purpose)
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), aad)
        return _PREFIX + ":".join(_b64e(part) for part in (wrapped, nonce, sealed))

    def decrypt(self, tenant: str, purpose: str, value: str, *, record: str, field: str) -> str:
        """Decrypt a value that `encrypt` made for the same tenant, purpose, record and field; BadRequest if not."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aad = _associated_data(tenant, purpose, record, field)
        if value.startswith(_RETIRED_PREFIXES):
            raise BadRequest("encrypted field format is retired: it is not bound to its record")
        if not value.startswith(_PREFIX):
            raise BadRequest("value is not an encrypted field")
        try:
            wrapped, nonce, sealed = (_b64d(part) for part in value[len(_PREFIX) :].split(":"))
        except ValueError:
            raise BadRequest("encrypted field is malformed") from None
        key = self._decrypt_keys.get((wrapped, tenant, purpose))
        if key is None:
            try:
                key = self.client.decrypt(
                    CiphertextBlob=wrapped,
                    KeyId=self._key_id,
                    EncryptionContext={"tenant": tenant, "purpose": purpose},
                )["Plaintext"]
            except self.client.exceptions.InvalidCiphertextException:
                # The data key was wrapped for another tenant or purpose (KMS checks the encryption context).
                raise BadRequest(_NOT_THIS_FIELD) from None
            self._decrypt_keys.put((wrapped, tenant, purpose), key)
        try:
            return AESGCM(key).decrypt(nonce, sealed, aad).decode()
        except InvalidTag:
            raise BadRequest(_NOT_THIS_FIELD) from None
        except ValueError:  # a nonce of the wrong length: not something `encrypt` made
            raise BadRequest("encrypted field is malformed") from None


def _associated_data(tenant: str, purpose: str, record: str, field: str) -> bytes:
    check_tenant(tenant)
    if not purpose or not record or not field or len(record) > _MAX_RECORD or len(field) > _MAX_FIELD:
        raise BadRequest("an encrypted field needs a purpose, a record (<= 512 chars) and a field (<= 128 chars)")
    return _framed("ats-field-v2", tenant, purpose, record, field)


class TenantKeys:
    """Keyed, versioned, domain-separated digests under each tenant's HMAC keys (tenant secret kind `hmac`)."""

    def __init__(self, secrets: TenantSecrets) -> None:
        self._secrets = secrets

    def digest(self, tenant: str, kind: str, value: str) -> str:
        """The digest of `value` as a `kind` (e.g. "email") under the tenant's current key, tagged `h<version>:`."""
        _check_kind(kind)
        version, key = self._secrets.current(tenant, HMAC_SECRET_KIND, min_bytes=MIN_HMAC_KEY_BYTES)
        return _digest(version, key, kind, value)

    def candidates(self, tenant: str, kind: str, value: str) -> list[str]:
        """Digests of `value` under every key version still held, oldest first: look-ups match data hashed
        before a rotation."""
        _check_kind(kind)
        keys = self._secrets.all_versions(tenant, HMAC_SECRET_KIND, min_bytes=MIN_HMAC_KEY_BYTES)
        return [_digest(version, key, kind, value) for version, key in keys.items()]


def _check_kind(kind: str) -> None:
    if not _DIGEST_KIND.match(kind):
        raise ConfigurationError(f"invalid digest kind {kind!r}")


def _digest(version: str, key: bytes, kind: str, value: str) -> str:
    if len(key) < MIN_HMAC_KEY_BYTES:  # also checked on load; a key handed in directly must not slip through
        raise ConfigurationError(f"HMAC key version {version} is shorter than {MIN_HMAC_KEY_BYTES} bytes")
    return f"h{version}:" + hmac.new(key, _framed(kind, value), hashlib.sha256).hexdigest()
