"""The emulator's gaps, each filled by the smallest adapter possible (listed in docs/decisions.md).

Every adapter is a named function, applied once per process by `apply_all`, and documented with the moto
behaviour it works around. None changes the template: they make moto deploy and run what `cdk deploy` would.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

_applied = False


def kms_cloudformation_tags() -> None:
    """moto's KMS `create_key` expects tags as TagKey/TagValue; CloudFormation passes Key/Value (KeyError)."""
    from moto.kms.models import KmsBackend

    original = KmsBackend.create_key

    def create_key(self: Any, *args: Any, **kwargs: Any) -> Any:
        tags = kwargs.get("tags")
        if tags and "Key" in tags[0]:
            kwargs["tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags]
        return original(self, *args, **kwargs)

    KmsBackend.create_key = create_key  # type: ignore[method-assign]


def event_bus_physical_id() -> None:
    """`Ref` to an AWS::Events::EventBus returns moto's object, not its name: give the bus a physical id."""
    from moto.events.models import EventBus

    EventBus.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]


def event_archive_names() -> None:
    """Two gaps in moto's AWS::Events::Archive: it names archives `<stack>-<logical id>-<suffix>`, past the API's
    48-character limit, so its own CreateArchive refuses them (CloudFormation keeps generated names within it);
    and it hands the template's EventPattern object to a parser that expects a JSON string."""
    from moto.events.models import Archive

    original = Archive.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        if len(resource_name) > 48:
            resource_name = f"{resource_name[:35]}-{resource_name[-12:]}"
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("EventPattern"), dict):
            properties = {**properties, "EventPattern": json.dumps(properties["EventPattern"])}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return original(cls, resource_name, cloudformation_json, *args, **kwargs)

    Archive.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def kms_key_specs() -> None:
    """moto's AWS::KMS::Key creates every key as SYMMETRIC_DEFAULT for ENCRYPT_DECRYPT, ignoring `KeySpec` and
    `KeyUsage`: create the key the template asks for (the audit digests' ECC_NIST_P256 signing key)."""
    from moto.kms.models import Key, kms_backends

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        key = kms_backends[account_id][region_name].create_key(
            policy=properties["KeyPolicy"],
            key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=properties.get("Description"),
            tags=properties.get("Tags", []),
        )
        key.key_rotation_status = properties.get("EnableKeyRotation", False)
        key.enabled = properties.get("Enabled", True)
        return key

    Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def bucket_eventbridge_notifications() -> None:
    """moto's AWS::S3::Bucket ignores `NotificationConfiguration`: apply its EventBridgeConfiguration through the
    API moto does implement (PutBucketNotificationConfiguration), so the bucket publishes Object Created to the
    default bus as it does in AWS."""
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    original = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        notifications = cloudformation_json.get("Properties", {}).get("NotificationConfiguration") or {}
        if (notifications.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (True, "true"):
            backend = s3_backends[account_id][get_partition(region_name)]
            backend.put_bucket_notification_configuration(bucket.name, {"EventBridgeConfiguration": {}})
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def lambda_invoke(dispatch: Callable[[Any, Any], tuple[str, bool, str]]) -> None:
    """moto runs Lambda code only in a container: route the one call every invoke path ends in (the Invoke API,
    Step Functions tasks, event source mappings) to `dispatch(function, event)`, which runs it in-process."""
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return dispatch(self, event)

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def rule_targets(deliver: Callable[[str, dict[str, Any], str], None]) -> None:
    """moto's rules deliver to SQS, logs, archives and buses only (Lambda targets raise NotImplementedError):
    hand Lambda and Step Functions targets of a matching rule to `deliver(rule_arn, target, payload)`, the payload
    shaped by the target's Input, InputPath or InputTransformer with moto's own parser, as for its own targets."""
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("lambda", "states")]
        for target in ours:
            deliver(self.arn, target, _target_payload(target, copy.deepcopy(original_event)))
        rest = [t for t in self.targets if t not in ours]
        if rest:
            clone = copy.copy(self)
            clone.targets = rest
            original(clone, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def _target_payload(target: dict[str, Any], event: dict[str, Any]) -> str:
    from moto.events.utils import EventTemplateParser

    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):  # moto has no InputPath: the simple `$.a.b` form, which is what CDK writes
        value: Any = event
        for part in str(target["InputPath"]).removeprefix("$").strip(".").split("."):
            value = value.get(part) if part and isinstance(value, dict) else value
        return json.dumps(value, default=str)
    transformer = target.get("InputTransformer") or {}
    if transformer:
        parse: Any = EventTemplateParser.parse
        shaped = parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        return shaped if isinstance(shaped, str) else json.dumps(shaped, default=str)
    return json.dumps(event, default=str)


def sqs_event_sources() -> None:
    """moto invokes an SQS-mapped function inside `SendMessage`, one message per call, with fixed attributes and
    no partial-batch responses, and a DynamoDB-stream-mapped function inside the write itself, synchronously:
    keep the mapping (the Lambda API still lists it) but detach it from the queue or table, so that the runtime's
    pollers (`infra/local/queues.py`, `infra/local/streams.py`) are the one consumer, as Lambda's pollers are."""
    from moto.awslambda.models import LambdaBackend
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends

    original = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        mapping = original(self, spec)
        if str(mapping.event_source_arn).startswith("arn:aws:sqs:"):
            for queue in sqs_backends[self.account_id][self.region_name].queues.values():
                if queue.queue_arn == mapping.event_source_arn:
                    queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        if ":dynamodb:" in str(mapping.event_source_arn):  # a table's stream: polled by infra/local/streams.py
            for table in dynamodb_backends[self.account_id][self.region_name].tables.values():
                table.lambda_event_source_mappings.pop(mapping.function_arn, None)
        return mapping

    LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]


def wait_states_follow(now: Callable[[], datetime]) -> None:
    """moto's Step Functions `Wait` state sleeps real seconds (and compares a `Timestamp` with naive local time):
    make it wait on the runtime's clock instead, so moving the clock forward releases waits that are due, as
    schedules are. It re-checks the clock every quarter second and still ends at once when the execution stops."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def deadline(function: Any, env: Any) -> datetime:
        if isinstance(function, Timestamp):  # Timestamp and TimestampPath: an absolute UTC time
            function.string.eval(env=env)
            text = env.stack.pop()
            moment = function._from_timestamp_string(timestamp=text)
            if moment is None:
                raise FailureEventException(function._create_failure_event(env, text))
            return moment.replace(tzinfo=UTC)
        return now() + timedelta(seconds=function._get_wait_seconds(env=env))

    def _eval_body(self: Any, env: Any) -> None:
        until = deadline(self, env)
        while env.is_running():
            remaining = (until - now()).total_seconds()
            if remaining <= 0:
                return
            if env.program_state_event.wait(min(remaining, 0.25)):
                time.sleep(0.05)  # the execution was interrupted or stopped: re-check rather than spin

    WaitFunction._eval_body = _eval_body  # type: ignore[method-assign]


def skipped_resource_attributes() -> None:
    """moto's CloudFormation skips the types it lacks (Cognito user pools among them), and then refuses the whole
    stack when another resource reads an attribute of one (`Fn::GetAtt [UserPool, Arn]` in the pre-token trigger's
    Lambda permission, the authorizer's provider ARNs): "references undefined resource". Give such a `GetAtt` the
    value's documented shape for the resource (`arn:aws:<service>:<region>:<account>:<type>/<logical id>`); the
    resource itself stays uncreated, as before, and whatever the runtime needs of it is its own named step."""
    from moto.cloudformation import parsing

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            name, attribute = resource_json["Fn::GetAtt"][0], resource_json["Fn::GetAtt"][1]
            declared = getattr(resources_map, "_resource_json_map", {}).get(name)
            if declared and parsing.resource_class_from_type(declared["Type"]) is None:
                _, service, kind = declared["Type"].split("::")
                region, account = resources_map["AWS::Region"], resources_map["AWS::AccountId"]
                arn = f"arn:aws:{service.lower()}:{region}:{account}:{kind.lower()}/{name}"
                return arn if attribute in ("Arn", "ProviderARN") else f"{name}-{attribute}"
        return original(resource_json, resources_map)

    parsing.clean_json = clean_json


_transactions_patched = False


def transactions_snapshot_items() -> None:
    """moto's `TransactWriteItems` deep-copies every table it touches, once per action, as its rollback snapshot:
    each transaction costs time in the size of the tables (the audit chain appends with one on every request, so
    the local API slowed as the audit table grew), and a copy taken while another request thread writes the table
    fails with `dictionary changed size during iteration` (a 500). Instead, transactions run one at a time and
    snapshot only the items they target; on a cancellation those items are put back as they were.

    And its stream records: moto adds one for every write as the transaction goes, so a transaction that a later
    condition cancels has already streamed its first writes (and the rollback streams its own), which DynamoDB never
    does: a stream holds only committed changes. Here the records a transaction makes are held back on its thread
    and added to their streams, in order, only when it commits; a cancelled one adds none."""
    global _transactions_patched
    if _transactions_patched:
        return
    import threading

    from moto.dynamodb import models
    from moto.dynamodb.models.table import StreamShard, Table

    held = threading.local()
    add_record = StreamShard.add

    def add(self: Any, old: Any, new: Any) -> None:
        pending = getattr(held, "records", None)
        if pending is None:
            add_record(self, old, new)
        else:
            pending.append((self, old, new))

    StreamShard.add = add  # type: ignore[method-assign]

    class _TablesNotCopied:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = _TablesNotCopied  # type: ignore[assignment]  # the module's only table copy is the snapshot
    original = models.DynamoDBBackend.transact_write_items
    lock = threading.Lock()

    def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
        if op_type != "Put":
            return dict(op["Key"])
        table = backend.get_table(op["TableName"])
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with lock:
            before: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
            for item in transact_items:
                op_type, op = next(iter(item.items()))
                if op_type == "ConditionCheck" or op.get("TableName") not in self.tables:
                    continue
                try:
                    key = _key(self, op_type, op)
                    current = self.get_item(op["TableName"], key)
                except Exception:  # noqa: BLE001 - a malformed action: moto's own validation reports it below
                    continue
                before.append(
                    (op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None)
                )
            held.records = []
            try:
                original(self, transact_items)
            except Exception:
                for table_name, key, attributes in reversed(before):
                    if attributes is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attributes)
                raise
            else:
                for shard, old, new in held.records:
                    add_record(shard, old, new)
            finally:
                held.records = None

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _transactions_patched = True


_queries_patched = False


def queries_read_one_partition() -> None:
    """moto answers a Query on a table's key by sorting every item of the table (`Table.all_items`) and keeping
    those of the asked partition: each read costs time in the size of the table where DynamoDB's costs the same,
    so the local runtime slowed as its tables grew (the audit linker reads a chain's head on every batch). Here a
    Query on a table's own key lists only its partition's items; queries on an index are moto's own."""
    global _queries_patched
    if _queries_patched:
        return
    import inspect
    import threading

    from moto.dynamodb.models.table import Table

    asked = threading.local()
    all_items = Table.all_items
    query = Table.query

    def partition_items(self: Any) -> Any:
        hash_key = getattr(asked, "hash_key", None)
        if hash_key is None or getattr(asked, "table", None) is not self:
            return all_items(self)
        partition = self.items.get(hash_key)
        if partition is None:
            return []
        return sorted(partition.values(), key=lambda item: item.range_key) if self.range_key_attr else [partition]

    signature = inspect.signature(query)

    def query_partition(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        if hash_key is None or signature.bind(self, hash_key, *args, **kwargs).arguments.get("index_name"):
            return query(self, hash_key, *args, **kwargs)
        asked.table, asked.hash_key = self, hash_key
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            asked.table = asked.hash_key = None

    Table.all_items = partition_items  # type: ignore[method-assign]
    Table.query = query_partition  # type: ignore[method-assign]
    _queries_patched = True


def apply_static() -> None:
    """The adapters that need no runtime collaborator (deploy-time fixes)."""
    global _applied
    if _applied:
        return
    transactions_snapshot_items()
    queries_read_one_partition()
    kms_cloudformation_tags()
    kms_key_specs()
    event_bus_physical_id()
    event_archive_names()
    bucket_eventbridge_notifications()
    sqs_event_sources()
    skipped_resource_attributes()
    _applied = True
