"""Objects written to S3 as they are produced, and the client that signs links to them: shared by the domains
that export (messages' eDiscovery exports, the audit trail's auditor exports).

Every write carries its SHA-256 as the S3 checksum: Object Lock buckets require a checksum on every write, and S3
then refuses bytes that do not match the digest the writer computed.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART_SIZE = 8 * 1024 * 1024  # S3's minimum is 5 MiB for every part but the last


def sha256_checksum(data: bytes) -> str:
    """The S3 `ChecksumSHA256` of `data` (base64 of its SHA-256 digest)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class S3ObjectWriter:
    """One object written as it is produced. Bytes collect in one buffer; each time it holds a part (8 MiB) the
    part is copied out and uploaded, and the object is completed (or, if it never filled a part, put whole) on
    `close`: at most a part's buffer and the part being sent are held."""

    def __init__(self, client: S3Client, bucket: str, key: str, content_type: str, part_size: int = PART_SIZE):
        self._client, self._bucket, self._key, self._type = client, bucket, key, content_type
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []  # one small entry per part uploaded: ETag and checksum

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            part = bytes(memoryview(self._buffer)[: self._part_size])
            del self._buffer[: self._part_size]  # what overflowed the part stays: less than one write
            self._upload_part(part)

    def _upload_part(self, part: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType=self._type, ChecksumAlgorithm="SHA256"
            )["UploadId"]
        number = len(self._parts) + 1
        checksum = sha256_checksum(part)
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=part,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum})

    def close(self) -> None:
        if self._upload_id is None:
            body, self._buffer = bytes(self._buffer), bytearray()
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=body,
                ContentType=self._type,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=sha256_checksum(body),
            )
            return
        if self._buffer:
            last, self._buffer = bytes(self._buffer), bytearray()
            self._upload_part(last)
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
        )
        self._upload_id = None

    def abort(self) -> None:
        """Give up the object: an unfinished multipart upload is aborted (the bucket's lifecycle rule is the
        backstop for a function that dies before it can)."""
        self._buffer = bytearray()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)


def presigning_client() -> Any:
    """An S3 client for presigned URLs: SigV4 on the regional virtual-hosted endpoint (the shared clients sign S3
    URLs with SigV2 on the global endpoint). A URL carries the signer's authority: the signing function's role must
    be allowed what the URL does."""
    from botocore.config import Config

    from shared.aws import _session

    return _session().create_client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))


class PresignedLinks:
    """Presigned GET URLs for objects of one bucket, signed by `presigning_client` (made on first use)."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self._bucket, self._client = bucket, client

    def _signer(self) -> Any:
        if self._client is None:
            self._client = presigning_client()
        return self._client

    def download(self, key: str, seconds: int) -> str:
        url: str = self._signer().generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
        )
        return url
