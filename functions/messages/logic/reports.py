"""Reports and monitoring of the messages domain (issue 12, section 7).

- `delivery_report`: for one requisition or one candidate, its messages by channel and direction, the delivery
  timeline (median and 90th percentile seconds from sent to delivered, delivered to opened, delivered to
  replied) and the response rate (delivered outbound messages the candidate answered / delivered outbound).
- `failures_report`: failure and bounce rates per channel and provider, and the platform's capture success rate
  (provider events stored / received, from the metrics the receivers and the ingest consumer publish).
- `synthetic_probe`: a synthetic message recorded through the API's queue, found stored by the ingest consumer,
  checked and deleted: the scheduled end-to-end check behind `SyntheticMessageSucceeded`.

Reports read the table's indexes (ByRequisition, ByCandidate, ByChannel) over the date range, oldest first, a
page at a time, and stop after `MAX_MESSAGES` messages per index partition: a report answers within the API's
time limit whatever the tenant's volume, and says when it stopped (`complete`, `covered_until`) rather than
extrapolating. Replies are matched by thread; a delivered message's thread with no reply among the report's own
messages is looked up on ByThread (a reply from a mail client carries no candidate id), at most
`MAX_THREAD_LOOKUPS` threads per report. Both reports need `messages:read` and are audited by the permission
check.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from functions.messages.dal.items import index_value
from functions.messages.dal.messages import IndexQuery, MessageStore, Page
from functions.messages.models.message import Channel, Direction, MessageState, Status
from functions.messages.models.reports_io import (
    CaptureOutput,
    ChannelCoverage,
    ChannelDelivery,
    DeliveryFigures,
    DeliveryReportOutput,
    FailureRow,
    FailuresReportOutput,
    TimingOutput,
)
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import AppError, BadRequest
from shared.permissions import Permission, authorize

if TYPE_CHECKING:
    from functions.messages.logic.record import DeliveryQueue

MAX_MESSAGES = 5_000  # per index partition a report reads (one requisition or candidate; one channel)
PAGE_SIZE = 500
MAX_THREAD_LOOKUPS = 200
THREAD_PAGE = 100
MAX_FAILURES_RANGE = timedelta(days=366)
DEFAULT_FAILURES_RANGE = timedelta(days=30)
RECEIVED_METRIC = "MessageEventsReceived"
STORED_METRIC = "MessageEventsStored"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$")  # the ids the ATS records (models/record_io.py)

_DELIVERY_PROOF = frozenset(
    {Status.DELIVERED, Status.OPENED, Status.CLICKED, Status.REPLIED, Status.COMPLAINED, Status.UNSUBSCRIBED}
)
_OPENED = frozenset({Status.OPENED, Status.CLICKED})  # a click proves the open the pixel may have missed
_SENT, _DELIVERED, _REPLIED = frozenset({Status.SENT}), frozenset({Status.DELIVERED}), frozenset({Status.REPLIED})


# --- statistics -------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The `fraction` quantile of `values` by linear interpolation between closest ranks (numpy's default);
    None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timing(seconds: Sequence[float]) -> TimingOutput:
    """Samples, median and 90th percentile of durations, to the millisecond."""

    def rounded(value: float | None) -> float | None:
        return round(value, 3) if value is not None else None

    return TimingOutput(
        samples=len(seconds),
        median_seconds=rounded(percentile(seconds, 0.5)),
        p90_seconds=rounded(percentile(seconds, 0.9)),
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- reading an index, bounded ----------------------------------------------------------------------------


class _Reader:
    """The messages of one index partition, oldest first, at most MAX_MESSAGES of them; afterwards `complete`
    says whether the partition's range was read to its end."""

    __slots__ = ("store", "tenant", "query", "bound", "read", "complete", "last_first_at")

    def __init__(self, store: MessageStore, tenant: str, query: IndexQuery) -> None:
        self.store, self.tenant, self.query = store, tenant, query
        self.bound = MAX_MESSAGES
        self.read = 0
        self.complete = True
        self.last_first_at: datetime | None = None

    def __iter__(self) -> Iterator[MessageState]:
        cursor: str | None = None
        while True:
            page = self.store.query(
                self.tenant, self.query, limit=min(PAGE_SIZE, self.bound - self.read), cursor=cursor, filters={}
            )
            for message in page.messages:
                if message.tenant != self.tenant:  # never another tenant's, whatever the index returned
                    continue
                self.read += 1
                self.last_first_at = message.first_at
                yield message
            cursor = page.cursor
            if cursor is None:
                return
            if self.read >= self.bound:
                self.complete = False
                return


def _iso(moment: datetime | None) -> str | None:
    return clock.isoformat(moment) if moment else None


def _check_range(since: datetime | None, until: datetime | None) -> None:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.utcoffset() is None:
            raise BadRequest(f"{name} must carry its UTC offset")
    if since and until and since > until:
        raise BadRequest("since must not be after until")


# --- the delivery report ----------------------------------------------------------------------------------


Scope = Literal["candidate", "requisition"]


class _Tally:
    __slots__ = (
        "outbound",
        "inbound",
        "delivered",
        "failed",
        "answered",
        "sent_to_delivered",
        "delivered_to_opened",
        "delivered_to_replied",
    )

    def __init__(self) -> None:
        self.outbound = self.inbound = self.delivered = self.failed = self.answered = 0
        self.sent_to_delivered: list[float] = []
        self.delivered_to_opened: list[float] = []
        self.delivered_to_replied: list[float] = []

    def _figures(self) -> dict[str, object]:
        return {
            "outbound": self.outbound,
            "inbound": self.inbound,
            "delivered": self.delivered,
            "failed": self.failed,
            "answered": self.answered,
            "response_rate": _rate(self.answered, self.delivered),
            "sent_to_delivered": timing(self.sent_to_delivered),
            "delivered_to_opened": timing(self.delivered_to_opened),
            "delivered_to_replied": timing(self.delivered_to_replied),
        }

    def figures(self) -> DeliveryFigures:
        return DeliveryFigures.model_validate(self._figures())

    def of_channel(self, channel: Channel) -> ChannelDelivery:
        return ChannelDelivery.model_validate({**self._figures(), "channel": channel})


class _Delivered(NamedTuple):
    """A delivered outbound message, as reply matching needs it."""

    message_id: str
    channel: Channel
    thread_id: str | None
    first_at: datetime
    delivered_at: datetime | None  # the provider's delivery time; None when only engagement proves it
    replied_at: datetime | None  # a REPLIED event on the message itself


def _first(message: MessageState, statuses: frozenset[Status]) -> datetime | None:
    return min((e.at for e in message.history if e.status in statuses), default=None)


def is_delivered(message: MessageState) -> bool:
    """Delivered, or proven delivered by what the recipient did with it (opened, clicked, replied...)."""
    if message.status.failure:
        return False
    return message.status in _DELIVERY_PROOF or any(e.status in _DELIVERY_PROOF for e in message.history)


def _seconds(start: datetime, end: datetime) -> float:
    # Providers' clocks disagree by a little: an event "before" its predecessor counts as immediate.
    return max(0.0, (end - start).total_seconds())


def delivery_report(
    actor: Actor,
    *,
    candidate_id: str | None,
    requisition_id: str | None,
    since: datetime | None,
    until: datetime | None,
    store: MessageStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> DeliveryReportOutput:
    """The delivery report of one requisition or one candidate of the actor's tenant, over [since, until] (the
    messages' first event time). BadRequest unless exactly one of the two ids is given, well formed."""
    if (candidate_id is None) == (requisition_id is None):
        raise BadRequest("name exactly one of candidate_id and requisition_id")
    scope: Scope = "candidate" if candidate_id else "requisition"
    subject = candidate_id or requisition_id
    assert subject is not None
    if not _ID.match(subject):
        raise BadRequest(f"{scope}_id is not an id")
    _check_range(since, until)
    authorize(
        actor,
        Permission.READ_MESSAGES,
        resource=f"/v1/message-reports/delivery?{scope}_id={subject}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    tenant = actor.tenant
    index = "ByCandidate" if scope == "candidate" else "ByRequisition"
    reader = _Reader(
        store, tenant, IndexQuery(index, index_value(tenant, subject), _iso(since), _iso(until), newest_first=False)
    )
    total = _Tally()
    channels: dict[Channel, _Tally] = defaultdict(_Tally)
    delivered: list[_Delivered] = []
    inbound: dict[str, dict[str, datetime]] = defaultdict(dict)  # thread -> inbound message id -> first_at
    for message in reader:
        _count(message, total, channels[message.channel], delivered, inbound)

    replies_complete = _look_up_threads(store, tenant, delivered, inbound)
    replies: set[str] = set()
    for sent in delivered:
        answers = {
            mid: at
            for mid, at in (inbound.get(sent.thread_id, {}) if sent.thread_id else {}).items()
            if at > sent.first_at and mid != sent.message_id
        }
        replies.update(answers)
        replied_at = min([*answers.values(), *([sent.replied_at] if sent.replied_at else [])], default=None)
        if replied_at is None:
            continue
        for tally in (total, channels[sent.channel]):
            tally.answered += 1
            if sent.delivered_at is not None:
                tally.delivered_to_replied.append(_seconds(sent.delivered_at, replied_at))

    return DeliveryReportOutput(
        scope=scope,
        subject_id=subject,
        since=since,
        until=until,
        total=total.figures(),
        channels=[channels[channel].of_channel(channel) for channel in Channel if channel in channels],
        inbound_replies=len(replies),
        messages_read=reader.read,
        limit=reader.bound,
        complete=reader.complete,
        covered_until=None if reader.complete else reader.last_first_at,
        replies_complete=replies_complete,
    )


def _count(
    message: MessageState,
    total: _Tally,
    channel: _Tally,
    delivered: list[_Delivered],
    inbound: dict[str, dict[str, datetime]],
) -> None:
    if message.direction is Direction.INBOUND:
        total.inbound += 1
        channel.inbound += 1
        if message.thread_id:
            inbound[message.thread_id][message.message_id] = message.first_at
        return
    total.outbound += 1
    channel.outbound += 1
    if message.status.failure:
        total.failed += 1
        channel.failed += 1
    if not is_delivered(message):
        return
    sent_at = _first(message, _SENT)
    delivered_at = _first(message, _DELIVERED)
    opened_at = _first(message, _OPENED)
    for tally in (total, channel):
        tally.delivered += 1
        if sent_at and delivered_at:
            tally.sent_to_delivered.append(_seconds(sent_at, delivered_at))
        if delivered_at and opened_at:
            tally.delivered_to_opened.append(_seconds(delivered_at, opened_at))
    delivered.append(
        _Delivered(
            message.message_id,
            message.channel,
            message.thread_id,
            message.first_at,
            delivered_at,
            _first(message, _REPLIED),
        )
    )


def _look_up_threads(
    store: MessageStore, tenant: str, delivered: list[_Delivered], inbound: dict[str, dict[str, datetime]]
) -> bool:
    """Find the inbound messages of the delivered messages' threads that the report's own index did not hold (a
    reply from a mail client carries no candidate or requisition id). False when some thread went unread."""
    wanted = list(
        dict.fromkeys(
            d.thread_id for d in delivered if d.thread_id and d.replied_at is None and not inbound.get(d.thread_id)
        )
    )
    complete = len(wanted) <= MAX_THREAD_LOOKUPS
    for thread_id in wanted[:MAX_THREAD_LOOKUPS]:
        query = IndexQuery("ByThread", index_value(tenant, thread_id), newest_first=False)
        page: Page = store.query(tenant, query, limit=THREAD_PAGE, cursor=None, filters={"direction": "inbound"})
        complete &= page.cursor is None
        for message in page.messages:
            if message.tenant == tenant and message.direction is Direction.INBOUND:
                inbound[thread_id][message.message_id] = message.first_at
    return complete


# --- the failures report ----------------------------------------------------------------------------------


class CaptureCounters(Protocol):
    """Sums of the domain's metrics over a window (CloudWatch GetMetricData in AWS)."""

    def sums(
        self, names: Sequence[str], *, since: datetime, until: datetime, period_seconds: int
    ) -> dict[str, float] | None: ...


class _FailureTally:
    __slots__ = ("outbound", "delivered", "failed", "bounced", "permanent", "delayed")

    def __init__(self) -> None:
        self.outbound = self.delivered = self.failed = self.bounced = self.permanent = self.delayed = 0


def carrier(message: MessageState) -> str:
    """The provider that carried a message: the first that reported on it other than the ATS (a message the ATS
    recorded as sent through SES is SES's once SES reports on it), else whoever recorded it."""
    return next((e.provider for e in message.history if e.provider != "ats"), message.provider)


def failures_report(
    actor: Actor,
    *,
    since: datetime | None,
    until: datetime | None,
    channel: Channel | None,
    store: MessageStore,
    audit: AuditLog,
    request_id: str,
    counters: CaptureCounters | None = None,
    source_ip: str | None = None,
) -> FailuresReportOutput:
    """Failure and bounce rates of the actor's tenant's outbound messages per channel and provider, over
    [since, until] (default: the last 30 days; at most 366), and the platform's capture success rate."""
    _check_range(since, until)
    until = until or clock.now()
    since = since or until - DEFAULT_FAILURES_RANGE
    _check_range(since, until)
    if until - since > MAX_FAILURES_RANGE:
        raise BadRequest("the failures report covers at most 366 days")
    authorize(
        actor,
        Permission.READ_MESSAGES,
        resource="/v1/message-reports/failures",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    tenant = actor.tenant
    tallies: dict[tuple[Channel, str], _FailureTally] = defaultdict(_FailureTally)
    coverage = []
    for each in [channel] if channel else list(Channel):
        query = IndexQuery("ByChannel", index_value(tenant, each.value), _iso(since), _iso(until), newest_first=False)
        reader = _Reader(store, tenant, query)
        for message in reader:
            if message.direction is not Direction.OUTBOUND:
                continue
            tally = tallies[(message.channel, carrier(message))]
            tally.outbound += 1
            tally.delivered += is_delivered(message)
            tally.failed += message.status.failure
            tally.bounced += message.status is Status.BOUNCED
            tally.permanent += any(e.permanent and e.status.failure for e in message.history)
            tally.delayed += any(e.status is Status.DELAYED for e in message.history)
        coverage.append(
            ChannelCoverage(
                channel=each,
                messages_read=reader.read,
                complete=reader.complete,
                covered_until=None if reader.complete else reader.last_first_at,
            )
        )
    rows = [
        FailureRow(
            channel=key[0],
            provider=key[1],
            outbound=t.outbound,
            delivered=t.delivered,
            failed=t.failed,
            bounced=t.bounced,
            permanent_failures=t.permanent,
            delayed=t.delayed,
            failure_rate=round(t.failed / t.outbound, 4),
            bounce_rate=round(t.bounced / t.outbound, 4),
        )
        for key, t in sorted(tallies.items(), key=lambda kv: (list(Channel).index(kv[0][0]), kv[0][1]))
    ]
    return FailuresReportOutput(
        since=since,
        until=until,
        channel=channel,
        rows=rows,
        coverage=coverage,
        complete=all(c.complete for c in coverage),
        limit=MAX_MESSAGES,
        capture=capture_rate(counters, since, until) if counters is not None else None,
    )


def metric_window(since: datetime, until: datetime, now: datetime) -> tuple[datetime, datetime, int]:
    """The window and period to ask CloudWatch for: the finest period still kept for data as old as `since`
    (one-minute data for 15 days, five-minute for 63, hourly for 455), the window widened to whole periods."""
    age = now - since
    period = 60 if age <= timedelta(days=15) else 300 if age <= timedelta(days=63) else 3600
    epoch = since.timestamp()
    start = datetime.fromtimestamp(epoch - epoch % period, tz=since.tzinfo)
    end_epoch = until.timestamp()
    end = datetime.fromtimestamp(end_epoch + (-end_epoch % period), tz=until.tzinfo)
    if end <= start:
        end = start + timedelta(seconds=period)
    return start, end, period


def capture_rate(counters: CaptureCounters, since: datetime, until: datetime) -> CaptureOutput | None:
    """Events stored / events received over the window; None when the metrics could not be read."""
    start, end, period = metric_window(since, until, clock.now())
    sums = counters.sums([RECEIVED_METRIC, STORED_METRIC], since=start, until=end, period_seconds=period)
    if sums is None:
        return None
    received, stored = sums.get(RECEIVED_METRIC, 0.0), sums.get(STORED_METRIC, 0.0)
    return CaptureOutput(
        received=received,
        stored=stored,
        success_rate=round(stored / received, 4) if received else None,
        since=start,
        until=end,
        period_seconds=period,
    )


# --- the synthetic message ----------------------------------------------------------------------------------

SYNTHETIC_JOB = "messages-synthetic"
SYNTHETIC_PREFIX = "synthetic-"  # the ATS message ids of synthetic messages: the only ones the probe deletes
SYNTHETIC_CANDIDATE = "synthetic-candidate"
SYNTHETIC_REQUISITION = "synthetic-requisition"
SYNTHETIC_DELETE_ACTION = "messages:synthetic-delete"
WAIT_SECONDS = 60.0
_POLL_DELAYS = (0.25, 0.5, 1.0, 2.0)  # then every 2 s


class SyntheticStore(Protocol):
    def get(self, tenant: str, message_id: str) -> MessageState | None: ...

    def query(
        self, tenant: str, query: IndexQuery, *, limit: int, cursor: str | None, filters: dict[str, str]
    ) -> Page: ...

    def delete_synthetic(self, tenant: str, message_id: str) -> bool:
        """Delete the message if its key starts with SYNTHETIC_PREFIX; whether it was deleted."""
        ...


class ProbeResult(NamedTuple):
    succeeded: bool
    message_id: str | None = None
    seconds_to_store: float | None = None
    problem: str | None = None
    leftovers_removed: int = 0


def _synthetic_problem(found: MessageState, tenant: str, key: str) -> str | None:
    """What differs between the stored message and the one recorded, or None."""
    expected = {
        "tenant": (found.tenant, tenant),
        "message_key": (found.message_key, key),
        "channel": (found.channel, Channel.IN_APP),
        "direction": (found.direction, Direction.OUTBOUND),
        "status": (found.status, Status.DELIVERED),
        "candidate_id": (found.candidate_id, SYNTHETIC_CANDIDATE),
        "requisition_id": (found.requisition_id, SYNTHETIC_REQUISITION),
        "history": (len(found.history), 1),
    }
    wrong = [name for name, (got, want) in expected.items() if got != want]
    return f"stored message differs in {', '.join(wrong)}" if wrong else None


def synthetic_probe(
    tenant: str,
    *,
    queue: DeliveryQueue,
    store: SyntheticStore,
    audit: AuditLog,
    request_id: str,
    wait_seconds: float = WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> ProbeResult:
    """Record a synthetic message for `tenant` through the API's queue (the use case the API runs, as the job
    `messages-synthetic`), wait up to `wait_seconds` for the ingest consumer to store it, check it and delete it.
    Synthetic messages a previous run left behind (stored after its wait ended) are deleted first."""
    from functions.messages.logic.record import record_messages
    from functions.messages.models.record_io import PartyInput, RecordedMessage
    from shared.audit import AuditEntry, Outcome

    actor = Actor.system(SYNTHETIC_JOB, tenant)

    def delete(message_id: str) -> bool:
        deleted = store.delete_synthetic(tenant, message_id)
        if deleted:
            audit.append(
                AuditEntry(
                    tenant=tenant,
                    actor=actor.label,
                    action=SYNTHETIC_DELETE_ACTION,
                    resource=f"/v1/messages/{message_id}",
                    outcome=Outcome.ALLOWED,
                    request_id=request_id,
                )
            )
        return deleted

    leftovers = store.query(
        tenant,
        IndexQuery("ByCandidate", index_value(tenant, SYNTHETIC_CANDIDATE), newest_first=False),
        limit=100,
        cursor=None,
        filters={},
    )
    removed = sum(
        delete(m.message_id)
        for m in leftovers.messages
        if m.tenant == tenant and m.message_key.startswith(SYNTHETIC_PREFIX)
    )

    key = f"{SYNTHETIC_PREFIX}{uuid.uuid4().hex}"
    message = RecordedMessage(
        message_id=key,
        channel=Channel.IN_APP,
        direction=Direction.OUTBOUND,
        status=Status.DELIVERED,
        occurred_at=clock.now(),
        candidate_id=SYNTHETIC_CANDIDATE,
        requisition_id=SYNTHETIC_REQUISITION,
        recipients=[PartyInput(address=SYNTHETIC_CANDIDATE)],
    )
    started = monotonic()
    try:
        (message_id,) = record_messages(actor, [message], queue=queue, audit=audit, request_id=request_id)
    except AppError as refused:
        return ProbeResult(False, problem=f"not recorded: {refused.message}", leftovers_removed=removed)

    attempt = 0
    while (found := store.get(tenant, message_id)) is None:
        delay = _POLL_DELAYS[min(attempt, len(_POLL_DELAYS) - 1)]
        if monotonic() + delay - started > wait_seconds:
            return ProbeResult(
                False, message_id, problem=f"not stored within {wait_seconds:g} s", leftovers_removed=removed
            )
        sleep(delay)
        attempt += 1
    seconds = round(monotonic() - started, 3)
    problem = _synthetic_problem(found, tenant, key)
    if not delete(message_id):
        problem = problem or "the stored message could not be deleted"
    return ProbeResult(problem is None, message_id, seconds, problem, removed)
