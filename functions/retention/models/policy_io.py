"""Request and response models of the retention-policy routes (the handler layer owns them).

The bounds are not pydantic constraints: a value outside its bound is a 400 naming the bound's label
(logic/policy.py), where a schema violation (a string for a number, an unknown field) is the 422 of every route.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from functions.retention.models.entities import POLICY_BOUNDS, FingerprintField, RetentionPolicy
from shared.models import Model


def _months(name: str) -> str:
    bound = POLICY_BOUNDS[name]
    return f"Months; {bound.label} ({bound.minimum} to {bound.maximum})"


class PolicyUpdate(Model):
    """The whole policy as it should become, and the version it replaces."""

    model_config = ConfigDict(extra="forbid")

    candidate_months: int = Field(description=_months("candidate_months"))
    registration_months: int = Field(description=_months("registration_months"))
    archive_after_months: int = Field(description=_months("archive_after_months"))
    keep_archived_months: int = Field(description=_months("keep_archived_months"))
    keep_applicants_months: int = Field(description=_months("keep_applicants_months"))
    fingerprint_fields: list[FingerprintField] = Field(
        description="What an applicant's duplicate-application fingerprint covers: at least one of email, phone"
    )
    notification_url: str | None = Field(
        default=None,
        description="Where the ATS is told of removals (signed webhook): https, or http to 127.0.0.1/localhost",
    )
    expected_version: int = Field(description="The version read before the change (0 while never set); 409 if stale")


class BoundOutput(Model):
    minimum: int = Field(description="Months")
    maximum: int = Field(description="Months; also the default")
    label: str


class PolicyOutput(Model):
    candidate_months: int
    registration_months: int
    archive_after_months: int
    keep_archived_months: int
    keep_applicants_months: int
    fingerprint_fields: list[FingerprintField]
    notification_url: str | None
    version: int = Field(description="0 while the tenant never set a policy (the defaults apply)")
    updated_at: datetime | None
    updated_by: str | None = Field(description="The actor of the last change, as the audit trail names it")
    bounds: dict[str, BoundOutput] = Field(description="The seed's bound of each period, by field name")

    @classmethod
    def of(cls, policy: RetentionPolicy) -> PolicyOutput:
        return cls(**_fields(policy))


class PolicyChangeOutput(PolicyOutput):
    shortened: list[str] = Field(description="The periods this change shortened; their due dates are recomputed")

    @classmethod
    def changed(cls, policy: RetentionPolicy, shortened: tuple[str, ...]) -> PolicyChangeOutput:
        return cls(**_fields(policy), shortened=list(shortened))


def _fields(policy: RetentionPolicy) -> dict[str, object]:
    return {
        **{name: getattr(policy, name) for name in POLICY_BOUNDS},
        "fingerprint_fields": list(policy.fingerprint_fields),
        "notification_url": policy.notification_url,
        "version": policy.version,
        "updated_at": policy.updated_at,
        "updated_by": policy.updated_by,
        "bounds": {
            name: BoundOutput(minimum=b.minimum, maximum=b.maximum, label=b.label) for name, b in POLICY_BOUNDS.items()
        },
    }
