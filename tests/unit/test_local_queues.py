"""The local SQS poller's event and settlement, checked against Lambda's SQS event model (Powertools parser)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from infra.local.queues import settle, sqs_event

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:inbound"


def received(n: int, **extra: Any) -> dict[str, Any]:
    """One message as `ReceiveMessage` returns it with all attributes."""
    return {
        "MessageId": f"m-{n}",
        "ReceiptHandle": f"rh-{n}",
        "MD5OfBody": "0" * 32,
        "Body": f'{{"n": {n}}}',
        "Attributes": {
            "SenderId": "AIDAEXAMPLE",
            "SentTimestamp": "1764150000000",
            "ApproximateReceiveCount": "1",
            "ApproximateFirstReceiveTimestamp": "1764150000001",
        },
        **extra,
    }


def test_a_batch_becomes_lambdas_sqs_event() -> None:
    message = received(
        1,
        MD5OfMessageAttributes="1" * 32,
        MessageAttributes={
            "tenant": {"StringValue": "acme", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    )

    event = sqs_event([message, received(2)], QUEUE_ARN, "eu-west-1")

    parsed = SqsModel.model_validate(event)
    first = parsed.Records[0]
    assert (first.messageId, first.receiptHandle, first.body) == ("m-1", "rh-1", '{"n": 1}')
    assert first.eventSource == "aws:sqs" and first.eventSourceARN == QUEUE_ARN and first.awsRegion == "eu-west-1"
    assert first.attributes.ApproximateReceiveCount == "1"
    assert first.messageAttributes["tenant"].stringValue == "acme"
    assert event["Records"][0]["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert [r.messageId for r in parsed.Records] == ["m-1", "m-2"]


MESSAGES = [received(n) for n in range(1, 4)]


@pytest.mark.parametrize(
    ("response", "partial", "deleted"),
    [
        (None, False, ["m-1", "m-2", "m-3"]),
        ({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, True, ["m-1", "m-3"]),
        # Without ReportBatchItemFailures on the mapping, a returned batch is a processed batch.
        ({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, False, ["m-1", "m-2", "m-3"]),
        ({"batchItemFailures": []}, True, ["m-1", "m-2", "m-3"]),
        ({"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}]}, True, ["m-2"]),
    ],
    ids=["returned", "partial-failure", "partial-not-enabled", "no-failures", "two-failures"],
)
def test_settlement_deletes_what_lambda_would_delete(response: Any, partial: bool, deleted: list[str]) -> None:
    assert [m["MessageId"] for m in settle(response, MESSAGES, partial)] == deleted
