"""Lambda's SQS poller, played locally: every enabled event source mapping from an SQS queue to a function of the
stack (from the template or created later through the API) is polled, its messages handed to the function in
batches in Lambda's event format, and settled as Lambda settles them.

moto's own trigger invokes the function inside `SendMessage`, one message per call, with fixed attributes and
no partial-batch responses; `adapters.sqs_event_sources` switches it off so this poller is the only consumer.
Settlement, as in AWS: a batch that returns is deleted, except the `batchItemFailures` it names when the mapping
has `ReportBatchItemFailures`; a batch whose function fails is left to reappear after the visibility timeout,
and moto's redrive policy moves a message to its dead-letter queue after `maxReceiveCount` receives.
"""

from __future__ import annotations

import base64
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from infra.local.functions import FunctionFailed

_REFRESH_SECONDS = 2.0
_WAIT_SECONDS = 1


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's poller passes to a function for a batch of `ReceiveMessage` results."""
    return {"Records": [_record(m, queue_arn, region) for m in messages]}


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {k: str(v) for k, v in (message.get("Attributes") or {}).items()}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {k: _attribute(v) for k, v in (message.get("MessageAttributes") or {}).items()},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": list(value.get("BinaryListValues") or []),
        "dataType": value.get("DataType", "String"),
    }


def settle(response: Any, messages: list[dict[str, Any]], partial: bool) -> list[dict[str, Any]]:
    """The messages to delete after the function returned `response` for them."""
    if not partial or not isinstance(response, dict) or not response.get("batchItemFailures"):
        return messages
    failed = {str(item.get("itemIdentifier")) for item in response["batchItemFailures"] if isinstance(item, dict)}
    return [m for m in messages if m["MessageId"] not in failed]


class MappingPoller(ABC):
    """Polls every enabled event source mapping of the emulator whose source `accepts`, one thread per mapping
    (mappings can be created at any time: the list is refreshed every few seconds). Subclasses poll one mapping."""

    kind = "mappings"

    def __init__(
        self,
        client: Callable[[str], Any],
        invoke: Callable[[str, Any], Any],
        logical_id: Callable[[str], str | None],
        region: str,
        say: Callable[[str], None],
    ) -> None:
        self._client = client
        self._invoke = invoke
        self._logical_id = logical_id
        self._region = region
        self._say = say
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._watcher = threading.Thread(target=self._watch, name=f"{self.kind}-mappings", daemon=True)
        self.batches = 0

    @abstractmethod
    def accepts(self, source_arn: str) -> bool:
        """Whether this poller serves mappings of `source_arn` (a queue, a table stream)."""

    @abstractmethod
    def _poll(self, mapping: dict[str, Any], function: str) -> None:
        """Feed `function` from the mapping's source until the poller stops."""

    def start(self) -> None:
        self.refresh()
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        """Start polling every enabled mapping of this kind not yet polled."""
        pages = self._client("lambda").get_paginator("list_event_source_mappings").paginate()
        for mapping in (m for page in pages for m in page["EventSourceMappings"]):
            arn = str(mapping.get("EventSourceArn", ""))
            if not self.accepts(arn) or mapping["UUID"] in self._threads or mapping.get("State") != "Enabled":
                continue
            function = self._logical_id(str(mapping["FunctionArn"]))
            if function is None:
                continue
            name = f"{self.kind}:{function}"
            thread = threading.Thread(target=self._poll, args=(mapping, function), name=name, daemon=True)
            self._threads[mapping["UUID"]] = thread
            thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(_REFRESH_SECONDS):
            try:
                self.refresh()
            except Exception as exc:  # the emulator is going away, or answered oddly: try again next time
                self._say(f"[local] listing event source mappings: {exc}")


class QueuePoller(MappingPoller):
    """Polls every SQS event source mapping of the emulator."""

    kind = "sqs"

    def accepts(self, source_arn: str) -> bool:
        return source_arn.startswith("arn:aws:sqs:")

    def _poll(self, mapping: dict[str, Any], function: str) -> None:
        sqs = self._client("sqs")
        queue_arn = str(mapping["EventSourceArn"])
        _, _, _, _, account, name = queue_arn.split(":", 5)
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        batch_size = min(int(mapping.get("BatchSize") or 10), 10)
        partial = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=batch_size,
                    WaitTimeSeconds=_WAIT_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as exc:
                if not self._stop.is_set():
                    self._say(f"[local] polling {name}: {exc}")
                    self._stop.wait(_WAIT_SECONDS)
                continue
            if not messages:
                continue
            self.batches += 1
            try:
                response = self._invoke(function, sqs_event(messages, queue_arn, self._region))
            except FunctionFailed as failed:
                self._say(f"[local] {function} failed on {len(messages)} message(s) from {name}: {failed}")
                continue  # left to reappear after the visibility timeout, then to the DLQ per the redrive policy
            done = settle(response, messages, partial)
            for start in range(0, len(done), 10):
                chunk = done[start : start + 10]
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
