"""Delivery to the targets the emulator does not deliver to (Lambda functions and Step Functions state machines of
EventBridge rules, and every target of a schedule), with the two layers of retries and dead letters AWS has:

1. **EventBridge (rules) / EventBridge Scheduler (schedules)** deliver the event to the target: a function
   invoked asynchronously, an execution started, a message sent. A *delivery* failure (the target no longer exists,
   throttling, a network error) is retried per the target's `RetryPolicy` (MaximumRetryAttempts,
   MaximumEventAgeInSeconds); errors no retry can cure (a missing target, a refused input) are not retried. When
   retries end, the event goes to the target's `DeadLetterConfig` queue with the attributes EventBridge adds
   (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS; Scheduler:
   SCHEDULE_ARN instead of RULE_ARN), or is dropped when there is none.
2. **Lambda's asynchronous invocation**: once Lambda accepted the event, a *function error* is Lambda's to retry
   (the function's EventInvokeConfig MaximumRetryAttempts, default 2, and MaximumEventAgeInSeconds, default 6 h),
   then the function's own dead-letter queue (`DeadLetterConfig.TargetArn`, attributes RequestID, ErrorCode,
   ErrorMessage) or its on-failure destination. A failed Step Functions execution is not redelivered by anyone.

Backoff is modelled, not slept: each retry advances a simulated event age by AWS's delay (exponential for
EventBridge, 1 then 2 minutes for Lambda) against MaximumEventAgeInSeconds, while the real pause is a few
milliseconds, so a failing target settles in well under a second.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.local.template import RetryPolicy

REAL_PAUSE_SECONDS = 0.005  # the real pause between two attempts (the modelled delay is not slept)


class DeliveryError(Exception):
    """A target could not be given the event. `code` is EventBridge's ERROR_CODE; `retryable` whether
    EventBridge would try again (a missing target or a refused input: no)."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Delivery:
    """One event for one target."""

    source_arn: str  # the rule's or the schedule's ARN
    target_arn: str
    payload: str
    retry: RetryPolicy = RetryPolicy()
    dead_letter_arn: str | None = None
    scheduler: bool = False  # EventBridge Scheduler (SCHEDULE_ARN) rather than a rule (RULE_ARN)
    detail_type: str | None = None  # a Scheduler target that is a bus: the event's detail-type and source
    event_source: str | None = None


@dataclass(frozen=True)
class AsyncPolicy:
    """A function's asynchronous-invocation settings (AWS::Lambda::EventInvokeConfig and DeadLetterConfig)."""

    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 6 * 3600
    dead_letter_arn: str | None = None  # SQS queue of the function's DeadLetterConfig or on-failure destination
    on_failure_record: bool = False  # True: an on-failure destination (invocation record), not a DLQ (raw event)


@dataclass
class Outcome:
    """What became of one delivery (for the log, /_local/status and tests)."""

    target_arn: str
    delivered: bool = False
    attempts: int = 0
    dead_lettered_to: str | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def eventbridge_delay(retry: int) -> float:
    """The modelled delay before EventBridge's `retry`-th retry: exponential back-off, capped at 5 minutes."""
    return float(min(2**retry, 300))


def lambda_delay(retry: int) -> float:
    """Lambda waits 1 minute before the first retry of an asynchronous invocation, 2 before the second."""
    return 60.0 * retry


def attempt_with_retries(
    action: Callable[[], Any],
    attempts_allowed: int,
    max_age: float,
    delay: Callable[[int], float],
    retryable: Callable[[Exception], bool],
    pause: Callable[[], None],
) -> tuple[Any, Exception | None, int, str | None]:
    """Run `action` until it succeeds, fails in a way no retry cures, runs out of retries or the event grows too
    old. Returns (result, last error, attempts made, exhausted condition)."""
    age = 0.0
    made = 0
    while True:
        made += 1
        try:
            return action(), None, made, None
        except Exception as exc:
            if not retryable(exc):
                return None, exc, made, None
            if made > attempts_allowed:
                return None, exc, made, "MaximumRetryAttempts"
            age += delay(made)
            if age > max_age:
                return None, exc, made, "MaximumEventAgeInSeconds"
            pause()


class TargetDelivery:
    """Delivers on a thread of its own per event (EventBridge and Lambda's async invocations are asynchronous)."""

    def __init__(
        self,
        start: Callable[[Delivery], Any],
        send_dead_letter: Callable[[str, str, dict[str, str]], None],
        say: Callable[[str], None],
        pause: Callable[[], None] = lambda: time.sleep(REAL_PAUSE_SECONDS),
    ) -> None:
        """`start(delivery)` hands the event to the target (for a function: Lambda accepts it; the run itself is
        `run_async`) and raises DeliveryError when it cannot. `send_dead_letter(queue_arn, body, attributes)`."""
        self._start = start
        self._send_dead_letter = send_dead_letter
        self._say = say
        self._pause = pause
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []

    def submit(self, delivery: Delivery) -> None:
        threading.Thread(target=self.deliver, args=(delivery,), name="target-delivery", daemon=True).start()

    def deliver(self, delivery: Delivery) -> Outcome:
        """Layer 1: EventBridge's delivery, retries and dead letter."""
        outcome = Outcome(delivery.target_arn)
        result, error, made, exhausted = attempt_with_retries(
            lambda: self._start(delivery),
            delivery.retry.maximum_retry_attempts,
            delivery.retry.maximum_event_age_seconds,
            eventbridge_delay,
            lambda exc: not isinstance(exc, DeliveryError) or exc.retryable,
            self._pause,
        )
        outcome.attempts = made
        if error is None:
            outcome.delivered = True
            outcome.detail = {"started": result}
            return self._record(outcome)
        code = error.code if isinstance(error, DeliveryError) else "SDK_CLIENT_ERROR"
        message = error.message if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
        outcome.error = f"{code}: {message}"
        if delivery.dead_letter_arn:
            attributes = {
                "SCHEDULE_ARN" if delivery.scheduler else "RULE_ARN": delivery.source_arn,
                "TARGET_ARN": delivery.target_arn,
                "ERROR_CODE": code,
                "ERROR_MESSAGE": message[:1000],
                "RETRY_ATTEMPTS": str(made - 1),
            }
            if exhausted:
                attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
            self._dead_letter(outcome, delivery.dead_letter_arn, delivery.payload, attributes)
        else:
            self._say(f"[local] event for {delivery.target_arn} dropped (no dead-letter queue): {outcome.error}")
        return self._record(outcome)

    def run_async(self, function_arn: str, payload: str, invoke: Callable[[], Any], policy: AsyncPolicy) -> Outcome:
        """Layer 2: Lambda's asynchronous invocation of an accepted event, with its retries and dead letter."""
        outcome = Outcome(function_arn, delivered=True)
        request_id = str(uuid.uuid4())
        _, error, made, _ = attempt_with_retries(
            invoke,
            policy.maximum_retry_attempts,
            policy.maximum_event_age_seconds,
            lambda_delay,
            lambda exc: True,
            self._pause,
        )
        outcome.attempts = made
        if error is None:
            return self._record(outcome)
        body = getattr(error, "body", None) or {"errorType": type(error).__name__, "errorMessage": str(error)}
        outcome.error = f"{body.get('errorType')}: {body.get('errorMessage')}"
        if policy.dead_letter_arn is None:
            self._say(f"[local] {function_arn} failed {made} time(s) on an event; dropped: {outcome.error}")
        elif policy.on_failure_record:
            record = {
                "version": "1.0",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "requestContext": {
                    "requestId": request_id,
                    "functionArn": f"{function_arn}:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": made,
                },
                "requestPayload": json.loads(payload),
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "responsePayload": body,
            }
            self._dead_letter(outcome, policy.dead_letter_arn, json.dumps(record), {})
        else:
            attributes = {
                "RequestID": request_id,
                "ErrorCode": "200",
                "ErrorMessage": str(body.get("errorMessage"))[:1000],
            }
            self._dead_letter(outcome, policy.dead_letter_arn, payload, attributes)
        return self._record(outcome)

    def _dead_letter(self, outcome: Outcome, queue_arn: str, body: str, attributes: dict[str, str]) -> None:
        try:
            self._send_dead_letter(queue_arn, body, attributes)
            outcome.dead_lettered_to = queue_arn
            self._say(f"[local] event for {outcome.target_arn} sent to dead-letter queue {queue_arn}: {outcome.error}")
        except Exception as exc:  # as EventBridge's InvocationsFailedToBeSentToDLQ: said, not raised
            self._say(f"[local] could not send to dead-letter queue {queue_arn}: {exc}; event dropped")

    def _record(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self.outcomes = (self.outcomes + [outcome])[-100:]
        return outcome

    def summary(self) -> dict[str, int]:
        with self._lock:
            return {
                "delivered": sum(o.delivered for o in self.outcomes),
                "dead_lettered": sum(o.dead_lettered_to is not None for o in self.outcomes),
                "failed": sum(o.error is not None for o in self.outcomes),
            }
