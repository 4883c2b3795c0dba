"""The message reports (GET /v1/message-reports/delivery and /failures), as the API returns them.

functions/messages/logic/reports.py builds these models itself: a report is a read-only view with nothing to map
between the use case and the route, and one set of classes is half the cold start of two. It reads a bounded number of
messages per index partition: `complete` says whether every message of the range was read, and `covered_until`
where reading stopped when it was not (ask again with `since` there for the rest).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from functions.messages.models.message import Channel
from shared.models import Model


class TimingOutput(Model):
    samples: int = Field(description="Messages that reached both points")
    median_seconds: float | None = None
    p90_seconds: float | None = Field(default=None, description="90th percentile (linear interpolation)")


class DeliveryFigures(Model):
    outbound: int = Field(description="Messages to the candidate")
    inbound: int = Field(description="Messages from the candidate")
    delivered: int = Field(description="Outbound messages the provider delivered (or that were opened or answered)")
    failed: int = Field(description="Outbound messages that ended bounced, failed or undelivered")
    answered: int = Field(description="Delivered outbound messages the candidate replied to")
    response_rate: float | None = Field(
        default=None, description="answered / delivered (null when nothing was delivered)"
    )
    sent_to_delivered: TimingOutput
    delivered_to_opened: TimingOutput
    delivered_to_replied: TimingOutput


class ChannelDelivery(DeliveryFigures):
    channel: Channel


class DeliveryReportOutput(Model):
    scope: Literal["candidate", "requisition"]
    subject_id: str = Field(description="The candidate or requisition id reported on")
    since: datetime | None = None
    until: datetime | None = None
    total: DeliveryFigures
    channels: list[ChannelDelivery]
    inbound_replies: int = Field(description="Distinct inbound messages that answered a delivered outbound one")
    messages_read: int
    limit: int = Field(description="The most messages one report reads")
    complete: bool = Field(description="False when the range holds more messages than `limit`")
    covered_until: datetime | None = Field(
        default=None, description="When incomplete: the first-event time of the last message read"
    )
    replies_complete: bool = Field(description="False when not every thread could be looked up for replies")


class FailureRow(Model):
    channel: Channel
    provider: str = Field(description="The provider that reported on the messages (`ats`: only the ATS did)")
    outbound: int
    delivered: int
    failed: int = Field(description="Ended bounced, failed or undelivered (bounces included)")
    bounced: int
    permanent_failures: int = Field(description="Failures the provider will not retry")
    delayed: int = Field(description="Messages the provider delayed or retried at least once")
    failure_rate: float = Field(description="failed / outbound")
    bounce_rate: float = Field(description="bounced / outbound")


class ChannelCoverage(Model):
    channel: Channel
    messages_read: int
    complete: bool
    covered_until: datetime | None = None


class CaptureOutput(Model):
    """Provider events stored / provider events received, platform-wide (CloudWatch metrics carry no tenant)."""

    scope: Literal["platform"] = "platform"
    source: Literal["cloudwatch"] = "cloudwatch"
    received: float
    stored: float
    success_rate: float | None = Field(default=None, description="stored / received (null when none received)")
    since: datetime = Field(description="The metrics' window, aligned to their period")
    until: datetime
    period_seconds: int


class FailuresReportOutput(Model):
    since: datetime
    until: datetime
    channel: Channel | None = None
    rows: list[FailureRow] = Field(description="One per channel and provider with outbound messages")
    coverage: list[ChannelCoverage]
    complete: bool
    limit: int = Field(description="The most messages read per channel")
    capture: CaptureOutput | None = Field(default=None, description="Null when the metrics could not be read")
