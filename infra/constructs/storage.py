"""S3: the access-log bucket, the tiered archive bucket and the Object-Locked audit/export bucket."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants
from infra.constructs.stage import StageConfig


class StorageConstruct(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, stage: StageConfig, data_key: kms.IKey, audit_key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self.access_logs = self._build_access_log_bucket()
        self.archive = self._build_archive_bucket(data_key)
        self.audit_exports = self._build_audit_bucket(audit_key)

    def _build_access_log_bucket(self) -> s3.Bucket:
        # S3 server access logging cannot deliver to a bucket encrypted with a customer key: S3-managed here.
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,  # log delivery granted by bucket policy, not ACL
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(constants.ACCESS_LOG_EXPIRY_DAYS),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            removal_policy=self._stage.removal_policy,
        )

    def _build_archive_bucket(self, key: kms.IKey) -> s3.Bucket:
        """Warm and cold tiers: Standard, then Standard-IA, Glacier Instant Retrieval, Deep Archive, expiry."""
        return s3.Bucket(
            self,
            "Archive",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="archive/",
            lifecycle_rules=[
                # Messages (functions/messages/logic/tiers.py) change class and go by each tenant's policy and
                # legal holds, never by age alone: the rule is for the subject-access exports only.
                s3.LifecycleRule(
                    id="tiers",
                    prefix="subject-access/",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(constants.ARCHIVE_TO_INFREQUENT_ACCESS_DAYS),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=Duration.days(constants.ARCHIVE_TO_GLACIER_IR_DAYS),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.DEEP_ARCHIVE,
                            transition_after=Duration.days(constants.ARCHIVE_TO_DEEP_ARCHIVE_DAYS),
                        ),
                    ],
                    expiration=Duration.days(constants.ARCHIVE_EXPIRY_DAYS),
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                # A message's older versions (the copy left in Standard-IA, the content a redaction rewrote away)
                # are removed as the new one is written; this catches one left by an interrupted call.
                s3.LifecycleRule(
                    id="messages",
                    prefix="messages/",
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
            removal_policy=self._stage.removal_policy,
        )

    def _build_audit_bucket(self, key: kms.IKey) -> s3.Bucket:
        """Exports that auditors pull: versioned, Object Lock (COMPLIANCE in prod, so no one can alter them)."""
        return s3.Bucket(
            self,
            "AuditExports",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=self._stage.audit_object_lock,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="audit-exports/",
            # The parts of an upload that an eDiscovery export step began and did not finish (it was stopped).
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="unfinished-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=self._stage.removal_policy,
        )
