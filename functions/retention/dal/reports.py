"""Reports in the export bucket (Object Lock): written once, never overwritten (the sweep's run reports, the
policy recompute's reports).

Its own module, imported only where a report is written: the S3 client is the heaviest to create, and a sweep
page or a recompute page that writes no report never needs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.aws import LazyClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3ReportStore:
    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self._bucket = bucket
        self._client = client

    client: LazyClient[S3Client] = LazyClient("s3")

    def put_once(self, key: str, body: bytes | Mapping[str, Any]) -> bool:
        """Write `body` (bytes, or a JSON document) at `key` unless it exists; False when an earlier attempt or
        execution wrote it."""
        data = body if isinstance(body, bytes) else json.dumps(body, sort_keys=True, indent=2).encode()
        try:
            self.client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType="application/json",
                IfNoneMatch="*",
                ChecksumAlgorithm="SHA256",  # an Object Lock bucket refuses a put without an integrity checksum
            )
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True
