"""Auditor exports in the Object Lock bucket: the digests and public keys they copy, their files, and presigned
links to them.

Every write carries its SHA-256 as an S3 checksum: Object Lock refuses a write without one, and S3 refuses bytes
that do not match. A file of entries is written as it is produced (`S3ObjectWriter`): 8 MiB parts of a multipart
upload (each part with its own checksum), or one PutObject when it ends before the first part is full, so a
writer never holds more than one part however long the range. The same pattern as the eDiscovery export's
(functions/messages/dal/export_files.py), kept in this domain so neither imports the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from functions.audit.dal.digests import PUBLIC_KEYS_PREFIX
from shared.audit_proof import DigestFile, parse_digest
from shared.aws import LazyClient
from shared.s3_objects import PART_SIZE, PresignedLinks, S3ObjectWriter, sha256_checksum

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _check_path(path: str) -> str:
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"not a path inside the export: {path!r}")
    return path


class S3ExportFiles:
    """The trail's digests and public keys in the bucket, and the files of exports (paths below a prefix)."""

    client: LazyClient[S3Client] = LazyClient("s3")

    def __init__(self, bucket: str, client: S3Client | None = None, *, part_size: int = PART_SIZE) -> None:
        self._bucket, self._client, self._part_size = bucket, client, part_size

    def digests(self, tenant: str, start: datetime, end: datetime) -> list[DigestFile]:
        """The tenant's digests of the periods starting in [start, end), ordered by period: one listing per UTC day
        (digest keys are `audit/digests/<tenant>/<yyyy>/<mm>/<dd>/<stamp>.json`, shared/audit_proof.py)."""
        keys: list[str] = []
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        low, high = f"{start:%Y%m%dT%H%M%SZ}", f"{end:%Y%m%dT%H%M%SZ}"
        paginator = self.client.get_paginator("list_objects_v2")
        while day < end:
            prefix = f"audit/digests/{tenant}/{day:%Y/%m/%d}/"
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for found in page.get("Contents", []):
                    stamp = found["Key"].rsplit("/", 1)[-1].removesuffix(".json")
                    if low <= stamp < high:
                        keys.append(found["Key"])
            day += timedelta(days=1)
        out = []
        for key in sorted(keys):
            raw = self.client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            out.append(DigestFile(key.rsplit("/", 1)[-1], raw, parse_digest(raw)))
        return out

    def public_key(self, key_id: str) -> tuple[str, bytes]:
        name = f"{key_id.rsplit('/', 1)[-1]}.pem"  # as the digest job publishes it (dal/digests.py)
        pem: bytes = self.client.get_object(Bucket=self._bucket, Key=PUBLIC_KEYS_PREFIX + name)["Body"].read()
        return name, pem

    def writer(self, prefix: str, path: str, content_type: str) -> S3ObjectWriter:
        return S3ObjectWriter(self.client, self._bucket, prefix + _check_path(path), content_type, self._part_size)

    def put(self, prefix: str, path: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self._bucket,
            Key=prefix + _check_path(path),
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=sha256_checksum(data),
        )

    def exists(self, prefix: str, path: str) -> bool:
        answer = self.client.list_objects_v2(Bucket=self._bucket, Prefix=prefix + _check_path(path), MaxKeys=1)
        return any(o["Key"] == prefix + path for o in answer.get("Contents", []))

    def read(self, prefix: str, path: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self._bucket, Key=prefix + _check_path(path))["Body"].read()
        return body


class S3ExportLinks(PresignedLinks):
    """Presigned GET URLs (SigV4, the regional virtual-hosted endpoint). The URL carries the signer's authority:
    the API function's role is allowed s3:GetObject on the exports and kms:Decrypt through S3."""
