"""The eDiscovery export's files in the export bucket, and the presigned links to them. Apart from the job item
(`dal/exports.py`) so that a function which only starts exports does not load the S3 half.

Files live under `messages/exports/<tenant>/<export id>/` in the export bucket (versioned, Object Lock, SSE-KMS
with the bucket's key by default, so no key is named here). Every upload carries its SHA-256 as an S3 checksum:
Object Lock requires a checksum on every write, and S3 then refuses bytes that do not match the digest the
export computed (PutObject: the whole object's SHA-256; multipart: each part's). A file is written as it is
produced (`S3ObjectWriter`, shared/s3_objects.py): parts of 8 MiB through a multipart upload, or one PutObject
when it ends before the first part is full, so a writer never holds more than one part. Natives are small and
many: `S3ExportFiles.put` uploads them on a few threads, with a bounded number in flight.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from functions.messages.dal.exports import export_prefix
from shared.aws import LazyClient
from shared.s3_objects import PART_SIZE, PresignedLinks, S3ObjectWriter

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from mypy_boto3_s3 import S3Client

PARALLEL_PUTS = 8  # within botocore's default pool of 10 connections


# --- the files ----------------------------------------------------------------------------------------------------


class S3ExportFiles:
    """The files of one export (paths relative to its prefix): streamed writers, natives put on a few threads
    (at most `2 * parallel` bodies held at once), and a file read back line by line."""

    client: LazyClient[S3Client] = LazyClient("s3")

    def __init__(
        self,
        bucket: str,
        tenant: str,
        export_id: str,
        client: S3Client | None = None,
        *,
        part_size: int = PART_SIZE,
        parallel: int = PARALLEL_PUTS,
    ) -> None:
        self._bucket, self._client = bucket, client
        self.prefix = export_prefix(tenant, export_id)
        self._part_size = part_size
        self._parallel = max(1, parallel)
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: deque[Future[None]] = deque()

    def key(self, path: str) -> str:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"not a path inside the export: {path!r}")
        return self.prefix + path

    def writer(self, path: str, content_type: str) -> S3ObjectWriter:
        return S3ObjectWriter(self.client, self._bucket, self.key(path), content_type, self._part_size)

    def put(self, path: str, data: bytes, *, sha256: bytes, content_type: str) -> None:
        """Upload a small file whose SHA-256 (raw digest) the caller computed; it may still be in flight when this
        returns: `drain` waits for every upload and raises the first failure."""
        if self._parallel == 1:
            self._put(self.key(path), data, sha256, content_type)
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="export-put")
        while len(self._in_flight) >= 2 * self._parallel:
            self._in_flight.popleft().result()
        client = self.client  # resolved here, on this thread
        self._in_flight.append(self._pool.submit(self._put, self.key(path), data, sha256, content_type, client))

    def _put(self, key: str, data: bytes, sha256: bytes, content_type: str, client: S3Client | None = None) -> None:
        (client or self.client).put_object(
            Bucket=self._bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(sha256).decode(),
        )

    def drain(self) -> None:
        while self._in_flight:
            self._in_flight.popleft().result()

    def lines(self, path: str) -> Iterator[bytes]:
        """The file's lines, each with its line ending, read as a stream (64 KiB at a time)."""
        body = self.client.get_object(Bucket=self._bucket, Key=self.key(path))["Body"]
        try:
            yield from body.iter_lines(chunk_size=64 * 1024, keepends=True)
        finally:
            body.close()

    def close(self, *, quiet: bool = False) -> None:
        """Wait for the uploads in flight and stop the threads; `quiet` when a failure is already being raised,
        so that an upload's own failure does not replace it."""
        try:
            self.drain()
        except Exception:
            if not quiet:
                raise
        finally:
            self._in_flight.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


# --- links --------------------------------------------------------------------------------------------------------


class S3ExportLinks(PresignedLinks):
    """Presigned URLs (SigV4, the regional virtual-hosted endpoint) for an export's files and for a listing of
    its prefix. The URL carries the signer's authority: this function's role must be allowed s3:GetObject on the
    exports, s3:ListBucket on their prefix and kms:Decrypt on the bucket's key through S3."""

    def listing(self, prefix: str, seconds: int) -> str:
        url: str = self._signer().generate_presigned_url(
            "list_objects_v2", Params={"Bucket": self._bucket, "Prefix": prefix}, ExpiresIn=seconds
        )
        return url
