"""Raw MIME that SES receiving or an SMTP relay captured to S3: objects under `inbound/<tenant>/`, so the key
names the tenant (the bucket is written only by our own receiving rule and relay role)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from shared.aws import LazyClient
from shared.keys import TENANT_PATTERN

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CAPTURE_PREFIX = "inbound/"
_TENANT = re.compile(TENANT_PATTERN)
MAX_MIME_BYTES = 25 * 1024 * 1024  # SES receiving's own limit for a message stored to S3 is 40 MB; ours is lower


class CapturedMail:
    client: LazyClient[S3Client] = LazyClient("s3")

    def __init__(self, client: S3Client | None = None) -> None:
        self._client = client

    @staticmethod
    def tenant_of(key: str) -> str | None:
        """The tenant a captured object belongs to, from its key; None for a key outside the layout."""
        if not key.startswith(CAPTURE_PREFIX):
            return None
        tenant, _, rest = key[len(CAPTURE_PREFIX) :].partition("/")
        return tenant if rest and _TENANT.match(tenant) else None

    def read(self, bucket: str, key: str) -> bytes:
        response = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{MAX_MIME_BYTES - 1}")
        return response["Body"].read()
