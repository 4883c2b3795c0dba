"""The archive bucket's subject-access exports: written per request, and purged (every version, delete markers
too) when the person is forgotten.

Objects live under `subject-access/<tenant>/<person_id>/<request_id>.json`. The bucket is versioned, so deleting
a key only stacks a delete marker on top of the data; `purge_person` lists every version and delete marker under
the person's prefix and deletes each by its VersionId, which removes it for good. Encryption is the bucket's
default (SSE-KMS with the bucket's key, set by the infrastructure), so no key id is named here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.aws import LazyClient
from shared.errors import DependencyFailure
from shared.keys import check_tenant

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_DELETE_BATCH = 1000  # DeleteObjects' limit


def person_prefix(tenant: str, person_id: str) -> str:
    """The prefix of a person's exports; it ends in `/`, so person `p-1` never matches `p-10`'s objects."""
    check_tenant(tenant)
    if not person_id or "/" in person_id:
        raise ValueError("a person id has no `/`")
    return f"subject-access/{tenant}/{person_id}/"


class S3ExportStore:
    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self._bucket = bucket
        self._client = client

    client: LazyClient[S3Client] = LazyClient("s3")

    def put_subject_access(self, tenant: str, person_id: str, request_id: str, body: bytes) -> str:
        """Store one subject-access export; its object key."""
        key = f"{person_prefix(tenant, person_id)}{request_id}.json"
        self.client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        return key

    def purge_person(self, tenant: str, person_id: str) -> int:
        """Delete every version and delete marker under the person's prefix; how many were deleted."""
        prefix = person_prefix(tenant, person_id)
        deleted = 0
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
        while True:
            page = self.client.list_object_versions(**kwargs)
            targets = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                if v["Key"].startswith(prefix)
            ]
            for start in range(0, len(targets), _DELETE_BATCH):
                chunk = targets[start : start + _DELETE_BATCH]
                answer = self.client.delete_objects(Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True})  # type: ignore[typeddict-item]
                if answer.get("Errors"):
                    codes = sorted({str(e.get("Code")) for e in answer["Errors"]})
                    raise DependencyFailure(f"could not delete {len(answer['Errors'])} export version(s): {codes}")
                deleted += len(chunk)
            if not page.get("IsTruncated"):
                return deleted
            kwargs["KeyMarker"] = page["NextKeyMarker"]
            kwargs["VersionIdMarker"] = page["NextVersionIdMarker"]

    # --- helper E: the sweep forgets people in batches ---------------------------------------------------------

    def purge_people(self, tenant: str, person_ids: Sequence[str]) -> int:
        """`purge_person` for several people: one listing per person, their versions deleted together (1,000 per
        DeleteObjects); how many were deleted."""
        targets: list[dict[str, str]] = []
        for person_id in person_ids:
            prefix = person_prefix(tenant, person_id)
            kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
            while True:
                page = self.client.list_object_versions(**kwargs)
                targets.extend(
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                    if v["Key"].startswith(prefix)
                )
                if not page.get("IsTruncated"):
                    break
                kwargs["KeyMarker"] = page["NextKeyMarker"]
                kwargs["VersionIdMarker"] = page["NextVersionIdMarker"]
        for start in range(0, len(targets), _DELETE_BATCH):
            chunk = targets[start : start + _DELETE_BATCH]
            answer = self.client.delete_objects(Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True})  # type: ignore[typeddict-item]
            if answer.get("Errors"):
                codes = sorted({str(e.get("Code")) for e in answer["Errors"]})
                raise DependencyFailure(f"could not delete {len(answer['Errors'])} export version(s): {codes}")
        return len(targets)
