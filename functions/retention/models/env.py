"""Settings of the retention functions, read from the environment the template gives them."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseSettings


class VacancyApiSettings(BaseSettings):
    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)


class PolicyApiSettings(BaseSettings):
    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)


class RecordsApiSettings(BaseSettings):
    """Applications, candidates and registrations: people's data sealed per person, fingerprints keyed."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    RETENTION_KEYS_TABLE_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)


class HoldsApiSettings(BaseSettings):
    """Legal holds on people, applications and vacancies."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)


class RecomputeSettings(BaseSettings):
    """The workflow step that recomputes the due dates a policy change shortens."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)


class SubjectApiSettings(BaseSettings):
    """Legal holds, self-service links and the applicant's own requests (access, leave the pool, erasure)."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    RETENTION_KEYS_TABLE_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)


class SweepSettings(BaseSettings):
    """The daily sweep's and the policy recompute's workflow steps."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    RETENTION_KEYS_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)


class NotifySettings(BaseSettings):
    """The consumer that tells the tenant's ATS of every removal (signed outbound webhook)."""

    RETENTION_TABLE_NAME: str = Field(min_length=3)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)
