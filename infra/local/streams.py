"""Lambda's DynamoDB Streams poller, played locally: every enabled event source mapping from a table's stream to a
function of the stack is read shard by shard (GetShardIterator, GetRecords) and handed to the function in batches
in Lambda's event format, in order.

moto's own trigger invokes the function inside the write that made the record, synchronously and with every
record of the shard so far; `adapters.sqs_event_sources` detaches it so this poller is the only consumer.
As in AWS, a batch whose function fails is retried (the same records, in order) up to the mapping's
`MaximumRetryAttempts`, then its description goes to the mapping's on-failure queue and the shard moves on.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from infra.local.functions import FunctionFailed
from infra.local.queues import MappingPoller

_IDLE_SECONDS = 0.25
_DEFAULT_RETRIES = 3


def stream_event(records: list[dict[str, Any]], stream_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's poller passes for a batch of GetRecords results (times as epoch seconds)."""
    out = []
    for record in records:
        data = dict(record.get("dynamodb") or {})
        created = data.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            data["ApproximateCreationDateTime"] = created.timestamp()
        out.append({**record, "dynamodb": data, "awsRegion": region, "eventSourceARN": stream_arn})
    return {"Records": out}


class StreamPoller(MappingPoller):
    """Polls every DynamoDB-stream event source mapping of the emulator."""

    kind = "ddb"

    def accepts(self, source_arn: str) -> bool:
        return ":dynamodb:" in source_arn

    def _poll(self, mapping: dict[str, Any], function: str) -> None:
        streams = self._client("dynamodbstreams")
        arn = str(mapping["EventSourceArn"])
        batch_size = int(mapping.get("BatchSize") or 100)
        retries = mapping.get("MaximumRetryAttempts")
        retries = _DEFAULT_RETRIES if retries is None or int(retries) < 0 else int(retries)
        on_failure = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        start = "LATEST" if mapping.get("StartingPosition") == "LATEST" else "TRIM_HORIZON"
        iterators: dict[str, str] = {}
        while not self._stop.is_set():
            try:
                for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"].get("Shards", []):
                    if shard["ShardId"] not in iterators:
                        iterators[shard["ShardId"]] = streams.get_shard_iterator(
                            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType=start
                        )["ShardIterator"]
                busy = False
                for shard_id, iterator in list(iterators.items()):
                    answer = streams.get_records(ShardIterator=iterator, Limit=batch_size)
                    records = answer.get("Records", [])
                    if records:
                        busy = True
                        self._deliver(function, records, arn, retries, on_failure)
                    iterators[shard_id] = answer.get("NextShardIterator") or iterator
            except Exception as exc:
                if not self._stop.is_set():
                    self._say(f"[local] polling the stream of {function}: {exc}")
                    self._stop.wait(1.0)
                continue
            if not busy:
                self._stop.wait(_IDLE_SECONDS)

    def _deliver(
        self, function: str, records: list[dict[str, Any]], arn: str, retries: int, on_failure: str | None
    ) -> None:
        event = stream_event(records, arn, self._region)
        for attempt in range(retries + 1):
            self.batches += 1
            try:
                self._invoke(function, event)
                return
            except FunctionFailed as failed:
                self._say(
                    f"[local] {function} failed on {len(records)} stream record(s) (attempt {attempt + 1}): {failed}"
                )
        if on_failure:
            first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
            description = {
                "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": function},
                "DDBStreamBatchInfo": {
                    "streamArn": arn,
                    "startSequenceNumber": first.get("SequenceNumber"),
                    "endSequenceNumber": last.get("SequenceNumber"),
                    "batchSize": len(records),
                },
            }
            self._client("sqs").send_message(QueueUrl=self._queue_url(on_failure), MessageBody=json.dumps(description))

    def _queue_url(self, queue_arn: str) -> str:
        _, _, _, _, account, name = queue_arn.split(":", 5)
        url: str = self._client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return url
