"""Rule and schedule targets delivered locally as in AWS: EventBridge's retry policy and dead-letter queue for a
target that cannot take the event, Lambda's asynchronous retries and the function's dead-letter queue for a
function that fails on it; back-off modelled, not slept."""

from __future__ import annotations

import json
import time
from typing import Any

from infra.local.delivery import AsyncPolicy, Delivery, DeliveryError, TargetDelivery
from infra.local.functions import FunctionFailed
from infra.local.template import RetryPolicy

RULE = "arn:aws:events:eu-west-1:123456789012:rule/bus/consumer"
TARGET = "arn:aws:states:eu-west-1:123456789012:stateMachine:Flow"
DLQ = "arn:aws:sqs:eu-west-1:123456789012:rule-dlq"


class Recorder:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.attempts = 0
        self.dead_letters: list[tuple[str, str, dict[str, str]]] = []
        self.said: list[str] = []

    def start(self, delivery: Delivery) -> str:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        return "started"

    def delivery(self) -> TargetDelivery:
        return TargetDelivery(
            self.start, lambda q, b, a: self.dead_letters.append((q, b, a)), self.said.append, pause=lambda: None
        )


def event(retry: RetryPolicy | None = None, dead_letter: str | None = DLQ, **extra: Any) -> Delivery:
    return Delivery(RULE, TARGET, json.dumps({"detail": {"n": 1}}), retry or RetryPolicy(), dead_letter, **extra)


def test_a_transient_failure_is_retried_and_delivered() -> None:
    recorder = Recorder([DeliveryError("THROTTLING", "slow down", retryable=True)] * 2)
    outcome = recorder.delivery().deliver(event())
    assert outcome.delivered and outcome.attempts == 3
    assert recorder.dead_letters == []


def test_retries_end_at_maximum_retry_attempts_then_the_dead_letter_queue_gets_the_event() -> None:
    recorder = Recorder([DeliveryError("THROTTLING", "slow down", retryable=True)] * 10)
    outcome = recorder.delivery().deliver(event(RetryPolicy(maximum_retry_attempts=2)))
    assert not outcome.delivered and recorder.attempts == 3
    [(queue, body, attributes)] = recorder.dead_letters
    assert queue == DLQ and json.loads(body) == {"detail": {"n": 1}}
    assert attributes == {
        "RULE_ARN": RULE,
        "TARGET_ARN": TARGET,
        "ERROR_CODE": "THROTTLING",
        "ERROR_MESSAGE": "slow down",
        "RETRY_ATTEMPTS": "2",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }


def test_the_event_age_limit_ends_retries_without_sleeping_it() -> None:
    recorder = Recorder([ConnectionError("emulator unreachable")] * 200)
    started = time.monotonic()
    recorder.delivery().deliver(event(RetryPolicy(maximum_retry_attempts=185, maximum_event_age_seconds=60)))
    assert time.monotonic() - started < 1
    assert 1 < recorder.attempts < 10  # back-off 2, 4, 8, 16, 32 modelled seconds: the age passes 60
    attributes = recorder.dead_letters[0][2]
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert attributes["ERROR_CODE"] == "SDK_CLIENT_ERROR"


def test_a_missing_target_goes_to_the_dead_letter_queue_without_retries() -> None:
    recorder = Recorder([DeliveryError("RESOURCE_NOT_FOUND", "State machine does not exist", retryable=False)])
    recorder.delivery().deliver(event())
    assert recorder.attempts == 1
    attributes = recorder.dead_letters[0][2]
    assert attributes["ERROR_CODE"] == "RESOURCE_NOT_FOUND" and attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes


def test_without_a_dead_letter_queue_a_failed_event_is_dropped_and_said() -> None:
    recorder = Recorder([DeliveryError("RESOURCE_NOT_FOUND", "gone", retryable=False)])
    outcome = recorder.delivery().deliver(event(dead_letter=None))
    assert outcome.error and recorder.dead_letters == []
    assert any("dropped" in line for line in recorder.said)


def test_a_schedules_dead_letter_names_the_schedule() -> None:
    recorder = Recorder([DeliveryError("RESOURCE_NOT_FOUND", "gone", retryable=False)])
    recorder.delivery().deliver(event(scheduler=True))
    assert "SCHEDULE_ARN" in recorder.dead_letters[0][2] and "RULE_ARN" not in recorder.dead_letters[0][2]


FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:consumer"
FUNCTION_DLQ = "arn:aws:sqs:eu-west-1:123456789012:function-dlq"


def failing(times: int) -> tuple[list[int], Any]:
    calls: list[int] = []

    def invoke() -> dict[str, str]:
        calls.append(1)
        if len(calls) <= times:
            raise FunctionFailed({"errorType": "ValueError", "errorMessage": "bad record"})
        return {"ok": "yes"}

    return calls, invoke


def test_a_failing_function_is_retried_as_lambda_retries_async_invocations() -> None:
    recorder = Recorder([])
    calls, invoke = failing(2)
    outcome = recorder.delivery().run_async(FUNCTION, "{}", invoke, AsyncPolicy(dead_letter_arn=FUNCTION_DLQ))
    assert len(calls) == 3 and outcome.error is None and recorder.dead_letters == []


def test_a_function_that_keeps_failing_lands_in_its_own_dead_letter_queue() -> None:
    recorder = Recorder([])
    calls, invoke = failing(99)
    payload = json.dumps({"detail": {"n": 2}})
    policy = AsyncPolicy(maximum_retry_attempts=1, dead_letter_arn=FUNCTION_DLQ)
    recorder.delivery().run_async(FUNCTION, payload, invoke, policy)
    assert len(calls) == 2
    [(queue, body, attributes)] = recorder.dead_letters
    assert queue == FUNCTION_DLQ and body == payload
    assert attributes["ErrorMessage"] == "bad record" and attributes["ErrorCode"] == "200" and attributes["RequestID"]


def test_an_on_failure_destination_gets_lambdas_invocation_record() -> None:
    recorder = Recorder([])
    _, invoke = failing(99)
    policy = AsyncPolicy(maximum_retry_attempts=0, dead_letter_arn=FUNCTION_DLQ, on_failure_record=True)
    recorder.delivery().run_async(FUNCTION, '{"n": 3}', invoke, policy)
    record = json.loads(recorder.dead_letters[0][1])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == {"n": 3} and record["responsePayload"]["errorType"] == "ValueError"


def test_lambdas_event_age_limit_ends_its_retries() -> None:
    recorder = Recorder([])
    calls, invoke = failing(99)
    policy = AsyncPolicy(maximum_retry_attempts=2, maximum_event_age_seconds=90, dead_letter_arn=FUNCTION_DLQ)
    recorder.delivery().run_async(FUNCTION, "{}", invoke, policy)
    assert len(calls) == 2  # the second retry would come 1 + 2 minutes after the event: past 90 s
