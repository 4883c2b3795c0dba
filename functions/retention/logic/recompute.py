"""Use cases: a policy change applies to future due dates; recompute what it shortens, and report it (seed 002).

The workflow started by `RetentionPolicyChanged` walks, for each due kind whose period got shorter, that kind's
sparse index one page at a time (`recompute_page`), and brings forward only the due dates that the policy now
makes earlier: a lengthened period changes nothing already computed, since every limit is an upper limit and
retention is never extended behind the tenant's back. Each write is conditioned on the due date read, so a record
the sweep or the ATS changed meanwhile is left to them. A brought-forward date moves its record backwards in the
index, behind the cursor, so no record is seen twice. When every kind is done, `finish_recompute` writes the
report (counts per kind) once to the export bucket and appends one audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from functions.retention.dal.recompute import DueEntity, DueStore, ReportStore
from functions.retention.logic.timeline import PERIOD_OF, candidate_due, registration_due, shortened, vacancy_due
from functions.retention.models.entities import DueKind, RetentionPolicy, Vacancy
from functions.retention.models.people import Candidate, Registration
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor

JOB = "retention-recompute"
ACTION = "retention.recompute"


@dataclass(frozen=True)
class RecomputePage:
    changed: int  # due dates brought forward on this page
    examined: int  # records read
    cursor: str | None  # where the next page starts; None when the kind is done


def kinds_shortened(periods: list[str] | tuple[str, ...]) -> list[DueKind]:
    """The due kinds whose period is among `periods`, in DueKind order."""
    return [kind for kind in DueKind if PERIOD_OF[kind] in periods]


def due_under(policy: RetentionPolicy, kind: DueKind, entity: DueEntity) -> datetime | None:
    """The due date of `kind` that `policy` gives the record, from its stored base dates (logic/timeline.py)."""
    if isinstance(entity, Vacancy):
        return vacancy_due(
            policy,
            status=entity.status,
            closed_at=entity.closed_at,
            archived_at=entity.archived_at,
            removed_at=entity.removed_at,
        ).get(kind)
    if isinstance(entity, Candidate):
        return candidate_due(policy, status=entity.status, matched_at=entity.matched_at)
    if isinstance(entity, Registration):
        return registration_due(policy, registered_at=entity.registered_at)
    raise TypeError(f"no due date of kind {kind} on a {type(entity).__name__}")  # pragma: no cover


def recompute_page(
    tenant: str,
    due_kind: DueKind,
    policy: RetentionPolicy,
    cursor: str | None,
    *,
    store: DueStore,
    limit: int = 100,
) -> RecomputePage:
    """One page of `due_kind`'s index for `tenant`: bring forward each due date that `policy` makes earlier."""
    records, next_cursor = store.page(tenant, due_kind, cursor, limit)
    changed = 0
    for record in records:
        target = shortened(record.due, due_under(policy, due_kind, record.entity))
        if target is not None and target < record.due and store.bring_forward(record, due_kind, target):
            changed += 1
    return RecomputePage(changed=changed, examined=len(records), cursor=next_cursor)


def report_key(tenant: str, policy_version: int) -> str:
    return f"retention/policy-changes/{tenant}/{policy_version}.json"


def finish_recompute(
    tenant: str,
    policy_version: int,
    counts: Mapping[str, int],
    examined: Mapping[str, int],
    *,
    reports: ReportStore,
    audit: AuditLog,
) -> str:
    """Write the report of a finished recompute (once) and audit it; return the report's key. Idempotent: a
    repeated step finds the report written and the audit entry recorded (same fact)."""
    key = report_key(tenant, policy_version)
    reports.put_once(
        key,
        {
            "tenant": tenant,
            "policy_version": policy_version,
            "shortened": dict(counts),
            "examined": dict(examined),
            "finished_at": clock.isoformat(clock.now()),
        },
    )
    summary = ", ".join(f"{kind} {n}" for kind, n in counts.items()) or "nothing shortened"
    audit.append(
        AuditEntry(
            tenant=tenant,
            actor=Actor.system(JOB, tenant).label,
            action=ACTION,
            resource=f"retention-policy/{policy_version}",
            outcome=Outcome.ALLOWED,
            request_id=f"{JOB}-{policy_version}",
            reason=f"due dates brought forward: {summary}; report {key}"[:512],
        )
    )
    return key
