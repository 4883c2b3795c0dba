"""Where digests go: the object in the Object Lock bucket (written only if absent), its state item in the audit
table (an insert), the KMS key that signs them, and the public key published beside them.

    Digest state   pk T#<tenant>#AUDIT#DIGEST   sk <period start, ISO>   period_end, key, body (the file's bytes)
    Public key     audit/public-keys/<key id>.pem in the bucket (SubjectPublicKeyInfo PEM)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from functions.audit.dal.items import latest_item
from shared import clock
from shared.audit_proof import ALGORITHM, Digest, DigestFile, parse_digest, public_key_pem
from shared.aws import LazyClient
from shared.keys import tenant_key
from shared.s3_objects import sha256_checksum

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

PUBLIC_KEYS_PREFIX = "audit/public-keys/"
_ABSENT = "attribute_not_exists(pk)"


@dataclass(frozen=True)
class DigestState:
    """The last digest of a tenant: where it ends, its object, its exact bytes, and where every shard's chain
    stood at its end (the last seq and hash digested, whichever earlier digest it was in)."""

    period_end: datetime
    key: str
    body: bytes
    ends: dict[int, tuple[int, str]]

    @property
    def digest(self) -> Digest:
        return parse_digest(self.body)


class S3DynamoDigestStore:
    dynamodb: LazyClient[DynamoDBClient] = LazyClient("dynamodb", attribute="_dynamodb")
    s3: LazyClient[S3Client] = LazyClient("s3", attribute="_s3")

    def __init__(
        self, table_name: str, bucket: str, *, dynamodb: DynamoDBClient | None = None, s3: S3Client | None = None
    ) -> None:
        self._table, self._bucket = table_name, bucket
        self._dynamodb, self._s3 = dynamodb, s3

    def last(self, tenant: str) -> DigestState | None:
        item = latest_item(self.dynamodb, self._table, tenant_key(tenant, "AUDIT", "DIGEST"))
        if item is None:
            return None
        return DigestState(
            period_end=datetime.fromisoformat(item["period_end"]["S"]),
            key=item["key"]["S"],
            body=item["body"]["B"],
            ends={int(k): (int(v[0]), str(v[1])) for k, v in json.loads(item["ends"]["S"]).items()},
        )

    def put_object(self, key: str, body: bytes) -> bytes:
        try:
            self.s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                IfNoneMatch="*",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=sha256_checksum(body),
            )
            return body
        except self.s3.exceptions.ClientError as refused:
            if refused.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
        # Written by an earlier run that stopped before recording it: it stands as it was written.
        stored: bytes = self.s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return stored

    def record(self, tenant: str, period_start: datetime, state: DigestState) -> None:
        try:
            self.dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": tenant_key(tenant, "AUDIT", "DIGEST")},
                    "sk": {"S": clock.isoformat(period_start)},
                    "period_end": {"S": state.period_end.isoformat()},
                    "key": {"S": state.key},
                    "body": {"B": state.body},
                    "ends": {"S": json.dumps({str(k): list(v) for k, v in sorted(state.ends.items())})},
                },
                ConditionExpression=_ABSENT,
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return  # recorded by an earlier attempt

    def publish_public_key(self, key_id: str, pem: bytes) -> str:
        """The signing key's public half beside the digests (once per key)."""
        key = f"{PUBLIC_KEYS_PREFIX}{key_id.rsplit('/', 1)[-1]}.pem"
        self.put_object_if_absent(key, pem, "application/x-pem-file")
        return key

    def put_object_if_absent(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self.s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=sha256_checksum(body),
            )
        except self.s3.exceptions.ClientError as refused:
            if refused.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise


def digest_files(bucket: str, tenant: str, client: S3Client | None = None) -> list[DigestFile]:
    """Every digest of `tenant` in the bucket, ordered by period (their keys sort by time)."""
    from shared.aws import client as shared_client

    s3: Any = client or shared_client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"audit/digests/{tenant}/"):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    out = []
    for key in sorted(keys):
        raw: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        out.append(DigestFile(key, raw, parse_digest(raw)))
    return out


class KmsDigestSigner:
    """Signs digests with the audit signing key (ECC_NIST_P256, ECDSA_SHA_256, MessageType RAW: a digest's
    signed form stays well under KMS's 4,096-byte limit with the inbox's 8 shards)."""

    algorithm = ALGORITHM
    kms: LazyClient[KMSClient] = LazyClient("kms")

    def __init__(self, key_id: str, client: KMSClient | None = None) -> None:
        self.key_id = key_id
        self._client = client

    def sign(self, message: bytes) -> bytes:
        if len(message) > 4096:
            raise ValueError("a digest's signed form is over KMS's 4,096-byte RAW limit")
        answer: Any = self.kms.sign(
            KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
        )
        signature: bytes = answer["Signature"]
        return signature

    def public_key_pem(self) -> bytes:
        return public_key_pem(self.kms.get_public_key(KeyId=self.key_id)["PublicKey"])
