"""Crypto-shredding: each person's personal data is sealed under that person's own data key.

The data key is made by KMS (`GenerateDataKey` on the data key, encryption context tenant + person) and kept,
wrapped, in the keys table: one item per person, `pk T#<t>#PERSON#<pid>`, `sk KEY`. That table has no
point-in-time recovery and no backups by design: erasing a person deletes their key item, and a restore of the
retention table (or any copy of its items) brings back only ciphertext that nothing can open any more.

Sealed values are `pdk:v1:<nonce>:<ciphertext>` (AES-256-GCM), bound to tenant, person and field name as
associated data, so a value copied to another person or field does not open.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from functions.retention.dal.items import key, person_pk
from shared.aws import LazyClient
from shared.errors import DependencyFailure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient

_PREFIX = "pdk:v1:"
_SK = "KEY"


class Shredded(Exception):
    """The person's data key is gone: their sealed data can never be opened again."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(tenant: str, person_id: str, field: str) -> bytes:
    return "\x1f".join(("person-data", tenant, person_id, field)).encode()


class PersonVault:
    """Seals, opens and shreds one person's fields. Keys are cached per execution environment."""

    def __init__(
        self, keys_table: str, kms_key_id: str, *, dynamodb: DynamoDBClient | None = None, kms: KMSClient | None = None
    ) -> None:
        self._table = keys_table
        self._key_id = kms_key_id
        self._dynamodb = dynamodb
        self._kms = kms
        self._plain: dict[tuple[str, str], bytes] = {}

    dynamodb_client: LazyClient[DynamoDBClient] = LazyClient("dynamodb", attribute="_dynamodb")
    kms_client: LazyClient[KMSClient] = LazyClient("kms", attribute="_kms")

    def _context(self, tenant: str, person_id: str) -> dict[str, str]:
        return {"tenant": tenant, "person": person_id, "purpose": "person-data"}

    def _key(self, tenant: str, person_id: str, *, create: bool) -> bytes:
        cached = self._plain.get((tenant, person_id))
        if cached is not None:
            return cached
        item_key = key(person_pk(tenant, person_id), _SK)
        item = self.dynamodb_client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get("Item")
        if item is None:
            if not create:
                raise Shredded(person_id)
            item = self._create(tenant, person_id, item_key)
        plain = self.kms_client.decrypt(
            CiphertextBlob=item["wrapped"]["B"],
            KeyId=self._key_id,
            EncryptionContext=self._context(tenant, person_id),
        )["Plaintext"]
        self._plain[(tenant, person_id)] = plain
        return plain

    def _create(self, tenant: str, person_id: str, item_key: dict[str, Any]) -> dict[str, Any]:
        wrapped = self.kms_client.generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=self._context(tenant, person_id)
        )["CiphertextBlob"]
        item = {**item_key, "wrapped": {"B": wrapped}, "tenant": {"S": tenant}}
        try:
            self.dynamodb_client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except self.dynamodb_client.exceptions.ConditionalCheckFailedException:
            # Another request created the person's key first: use that one.
            stored = self.dynamodb_client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get("Item")
            if stored is None:
                raise DependencyFailure("the person's key vanished while it was being created") from None
            return stored
        return item

    def seal(self, tenant: str, person_id: str, fields: Mapping[str, str | None]) -> dict[str, str]:
        """Encrypt each non-empty field under the person's key (created on first use)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        present = {name: value for name, value in fields.items() if value}
        if not present:
            return {}
        aead = AESGCM(self._key(tenant, person_id, create=True))
        sealed = {}
        for name, value in present.items():
            nonce = os.urandom(12)
            ciphertext = aead.encrypt(nonce, value.encode(), _aad(tenant, person_id, name))
            sealed[name] = f"{_PREFIX}{_b64e(nonce)}:{_b64e(ciphertext)}"
        return sealed

    def open(self, tenant: str, person_id: str, sealed: Mapping[str, str]) -> dict[str, str]:
        """Decrypt fields that `seal` made for this person; Shredded once the person's key is gone."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not sealed:
            return {}
        aead = AESGCM(self._key(tenant, person_id, create=False))
        opened = {}
        for name, value in sealed.items():
            if not value.startswith(_PREFIX):
                raise ValueError(f"field {name} is not sealed person data")
            nonce, ciphertext = (_b64d(part) for part in value[len(_PREFIX) :].split(":"))
            opened[name] = aead.decrypt(nonce, ciphertext, _aad(tenant, person_id, name)).decode()
        return opened

    def shred(self, tenant: str, person_id: str) -> None:
        """Destroy the person's key: everything sealed for them, wherever a copy of it lies, is unreadable."""
        self._plain.pop((tenant, person_id), None)
        self.dynamodb_client.delete_item(TableName=self._table, Key=key(person_pk(tenant, person_id), _SK))


# --- helper E (the sweep forgets people in batches) ------------------------------------------------------------------


def data_key_item_key(tenant: str, person_id: str) -> dict[str, Any]:
    """The key of the person's data key item in the keys table: deleting that item is shredding (the sweep does
    it in its page transaction, conditioned with the person item's delete)."""
    return key(person_pk(tenant, person_id), _SK)
