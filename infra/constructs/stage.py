"""What differs between the deployment stages: dev is removable, prod keeps everything and locks exports."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3

from infra import constants


@dataclass(frozen=True)
class StageConfig:
    """One deployment stage (`-c stage=dev|prod`). Constructs ask it, never compare the name themselves."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in constants.STAGES:
            raise ValueError(f"unknown stage {self.name!r}: choose one of {', '.join(constants.STAGES)}")

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """RETAIN in prod; in dev everything goes with the stack (no auto-delete custom resources)."""
        return RemovalPolicy.RETAIN if self.is_prod else RemovalPolicy.DESTROY

    @property
    def deletion_protection(self) -> bool:
        return self.is_prod

    @property
    def key_pending_window(self) -> Duration | None:
        """None keeps KMS's default (30 days); a dev key is scheduled for deletion after the shortest window."""
        return None if self.is_prod else Duration.days(constants.DEV_KEY_PENDING_WINDOW_DAYS)

    @property
    def audit_object_lock(self) -> s3.ObjectLockRetention:
        """COMPLIANCE for the configured years in prod; GOVERNANCE for a day in dev, so a trial stack can go."""
        if self.is_prod:
            return s3.ObjectLockRetention.compliance(Duration.days(365 * constants.AUDIT_OBJECT_LOCK_YEARS))
        return s3.ObjectLockRetention.governance(Duration.days(constants.DEV_AUDIT_OBJECT_LOCK_DAYS))
