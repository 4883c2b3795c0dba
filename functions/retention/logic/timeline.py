"""The retention timeline as pure functions of the policy and a record's dates (seed 002).

The timeline is cumulative and every limit is an upper limit:
- a closed vacancy is archived `archive_after_months` after closing;
- an archived vacancy is removed `keep_archived_months` after archiving;
- its applicants are removed `keep_applicants_months` after the vacancy's removal;
- a suggested candidate's link goes `candidate_months` after the match (invited and applied ones are kept);
- a talent-pool registration goes `registration_months` after registration.

Closing or archiving early starts the next phase early, since each due date counts from the date the phase
actually began. A phase begins when it was due, not when the sweep reached it: a late sweep never extends
retention. Months are calendar months (the 31st plus one month is the 30th or the 28th/29th).
"""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta

from functions.retention.models.entities import CandidateStatus, DueKind, RetentionPolicy, VacancyStatus


def add_months(moment: datetime, months: int) -> datetime:
    return moment + relativedelta(months=months)


def vacancy_due(
    policy: RetentionPolicy,
    *,
    status: VacancyStatus,
    closed_at: datetime | None,
    archived_at: datetime | None,
    removed_at: datetime | None,
) -> dict[DueKind, datetime]:
    """The one due date a vacancy has in its current phase (none while open)."""
    if status is VacancyStatus.CLOSED and closed_at is not None:
        return {DueKind.ARCHIVE: add_months(closed_at, policy.archive_after_months)}
    if status is VacancyStatus.ARCHIVED and archived_at is not None:
        return {DueKind.REMOVAL: add_months(archived_at, policy.keep_archived_months)}
    if status is VacancyStatus.REMOVED and removed_at is not None:
        return {DueKind.APPLICANTS: add_months(removed_at, policy.keep_applicants_months)}
    return {}


def candidate_due(policy: RetentionPolicy, *, status: CandidateStatus, matched_at: datetime) -> datetime | None:
    """When a candidate's link to its vacancy goes: only a suggested one has a limit (the seed keeps invited and
    applied candidates for reporting, until their vacancy's timeline ends)."""
    if status is CandidateStatus.SUGGESTED:
        return add_months(matched_at, policy.candidate_months)
    return None


def registration_due(policy: RetentionPolicy, *, registered_at: datetime) -> datetime:
    return add_months(registered_at, policy.registration_months)


def shortened(old: datetime | None, new: datetime | None) -> datetime | None:
    """The due date after a policy change: the new one where it is earlier, the stored one otherwise.

    A policy change applies to future due dates; it never extends one that was already computed."""
    if old is None:
        return new
    if new is None:
        return old
    return min(old, new)


PERIOD_OF: dict[DueKind, str] = {
    DueKind.ARCHIVE: "archive_after_months",
    DueKind.REMOVAL: "keep_archived_months",
    DueKind.APPLICANTS: "keep_applicants_months",
    DueKind.CANDIDATE: "candidate_months",
    DueKind.REGISTRATION: "registration_months",
}
