"""The emulator steps for what moto's CloudFormation skips or lacks, run against moto in-process: the template's
secrets, the tenants' secrets from the template's declaration, settings that referred to skipped resources, and a
rule whose target is an SQS queue (the consumer pattern's first hop, which moto delivers itself)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local import adapters
from infra.local.emulator import (
    REGION,
    Emulator,
    Unresolved,
    create_template_secrets,
    create_user_pools,
    resolve,
    seed_tenant_secrets,
)
from infra.local.template import Assembly, TenantSecretDef

STACK = "AtsCompliance-dev"


class LocalClients(Emulator):
    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        return self.clients[service]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    with mock_aws():
        yield LocalClients(server=None, endpoint="", port=0)


def assembly(resources: dict[str, Any], metadata: dict[str, Any] | None = None, **outputs: Any) -> Assembly:
    template = {"Resources": resources, "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    declared = [TenantSecretDef(**d) for d in (metadata or {}).get("AtsTenantSecrets", [])]
    return Assembly(STACK, template, None, {"files": {}}, None, tenant_secrets=declared)  # type: ignore[arg-type]


def test_every_secret_of_the_template_is_created_from_its_string_or_generator(emulator: Emulator) -> None:
    resources = {
        "Plain": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {"Name": {"Fn::Join": ["", [{"Ref": "AWS::StackName"}, "/plain"]]}, "SecretString": "s3cr3t"},
        },
        "Generated": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"username": "svc"}',
                    "GenerateStringKey": "password",
                    "PasswordLength": 40,
                    "ExcludePunctuation": True,
                }
            },
        },
        "Bare": {"Type": "AWS::SecretsManager::Secret", "Properties": {"KmsKeyId": {"Ref": "SomeKey"}}},
    }
    arns = create_template_secrets(emulator, assembly(resources))
    secrets = emulator.client("secretsmanager")
    assert set(arns) == {"Plain", "Generated", "Bare"}
    assert secrets.get_secret_value(SecretId=f"{STACK}/plain")["SecretString"] == "s3cr3t"
    generated = json.loads(secrets.get_secret_value(SecretId=arns["Generated"])["SecretString"])
    assert generated["username"] == "svc" and len(generated["password"]) == 40 and generated["password"].isalnum()
    assert secrets.get_secret_value(SecretId=arns["Bare"])["SecretString"]  # an unknown secret never stops the start


def test_the_templates_user_pools_are_created_so_a_ref_to_one_resolves(emulator: Emulator) -> None:
    resources = {
        "ApiUsers": {"Type": "AWS::Cognito::UserPool", "Properties": {"UserPoolName": "ignored"}},
        "Plain": {"Type": "AWS::SecretsManager::Secret", "Properties": {"SecretString": "s"}},
    }
    pools = create_user_pools(emulator, assembly(resources))
    assert set(pools) == {"ApiUsers"}
    described = emulator.client("cognito-idp").describe_user_pool(UserPoolId=pools["ApiUsers"])["UserPool"]
    assert described["Name"] == f"{STACK}-ApiUsers"
    # What a function's USER_POOL_ID (a Ref to the pool) becomes
    assert resolve({"Ref": "ApiUsers"}, STACK, pools) == pools["ApiUsers"]
    assert create_user_pools(emulator, assembly({})) == {}


def test_tenant_secrets_are_seeded_per_declaration_as_keyrings(emulator: Emulator) -> None:
    metadata = {
        "AtsTenantSecrets": [
            {"kind": "hmac", "description": "HMAC key"},
            {"kind": "webhook/standard", "description": "signing secret", "session": True},
        ]
    }
    prefix = {"Fn::Join": ["", [{"Ref": "AWS::StackName"}, "/tenants/"]]}
    for_session = seed_tenant_secrets(emulator, assembly({}, metadata, TenantSecretPrefix=prefix), ["acme", "globex"])
    secrets = emulator.client("secretsmanager")
    names = sorted(s["Name"] for s in secrets.list_secrets()["SecretList"])
    assert names == [
        f"{STACK}/tenants/acme/hmac",
        f"{STACK}/tenants/acme/webhook/standard",
        f"{STACK}/tenants/globex/hmac",
        f"{STACK}/tenants/globex/webhook/standard",
    ]
    keyring = json.loads(secrets.get_secret_value(SecretId=f"{STACK}/tenants/acme/hmac")["SecretString"])
    assert keyring["current"] == "1" and len(base64.b64decode(keyring["keys"]["1"])) == 32
    # Only the session kinds reach session.json, with the very key the secret holds; each tenant its own key
    assert set(for_session) == {"acme", "globex"} and all(set(v) == {"webhook/standard"} for v in for_session.values())
    webhook = json.loads(secrets.get_secret_value(SecretId=f"{STACK}/tenants/globex/webhook/standard")["SecretString"])
    assert for_session["globex"]["webhook/standard"] == webhook["keys"]["1"]
    assert for_session["acme"]["webhook/standard"] != for_session["globex"]["webhook/standard"]


def test_nothing_declared_nothing_seeded(emulator: Emulator) -> None:
    assert seed_tenant_secrets(emulator, assembly({}), ["acme", "globex"]) == {}
    assert emulator.client("secretsmanager").list_secrets()["SecretList"] == []


def test_references_resolve_to_what_the_runtime_created() -> None:
    refs = {"Secret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"}
    assert resolve({"Ref": "Secret"}, STACK, refs) == refs["Secret"]
    assert resolve({"Fn::GetAtt": ["Secret", "Arn"]}, STACK, refs) == refs["Secret"]
    assert resolve({"Fn::Sub": "${AWS::StackName}/${AWS::Region}"}, STACK, {}) == f"{STACK}/eu-west-1"
    with pytest.raises(Unresolved):
        resolve({"Ref": "Skipped"}, STACK, refs)


def test_a_rule_with_an_sqs_target_from_the_template_delivers_matching_events(emulator: Emulator) -> None:
    adapters.apply_static()  # the bus's physical id, as the runtime deploys
    template = {
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "domain-bus"}},
            "Inbox": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Consumer": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventBusName": {"Ref": "Bus"},
                    "EventPattern": {"source": ["ats.retention"], "detail-type": ["PolicyChanged"]},
                    "State": "ENABLED",
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Inbox", "Arn"]}, "Id": "inbox"}],
                },
            },
        }
    }
    cfn = emulator.client("cloudformation")
    cfn.create_stack(StackName="rule-to-queue", TemplateBody=json.dumps(template))
    resources = cfn.describe_stack_resources(StackName="rule-to-queue")["StackResources"]
    queue_url = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "Inbox")
    detail = {"metadata": {"tenant": "acme"}, "data": {"policy_id": "p1"}}
    emulator.client("events").put_events(
        Entries=[
            {"EventBusName": "domain-bus", "Source": "ats.retention", "DetailType": dt, "Detail": json.dumps(detail)}
            for dt in ("PolicyChanged", "SomethingElse")
        ]
    )
    messages = emulator.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])  # the SQS message body is the EventBridge event
    assert body["detail-type"] == "PolicyChanged" and body["source"] == "ats.retention" and body["detail"] == detail


def _table(ddb: Any) -> None:
    ddb.create_table(
        TableName="tx",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_a_cancelled_transaction_leaves_every_item_as_it_was_without_copying_tables() -> None:
    """adapters.transactions_snapshot_items: moto's rollback copied whole tables per action; items suffice."""
    adapters.transactions_snapshot_items()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        _table(ddb)
        ddb.put_item(TableName="tx", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        ddb.put_item(TableName="tx", Item={"pk": {"S": "b"}, "n": {"N": "1"}})
        # When a transaction updates a, deletes b, puts c, then fails its last condition
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": "tx",
                            "Key": {"pk": {"S": "a"}},
                            "UpdateExpression": "SET n = :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}},
                        }
                    },
                    {"Delete": {"TableName": "tx", "Key": {"pk": {"S": "b"}}}},
                    {"Put": {"TableName": "tx", "Item": {"pk": {"S": "c"}}}},
                    {
                        "Put": {
                            "TableName": "tx",
                            "Item": {"pk": {"S": "a2"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        # Then nothing of it happened
        items = {i["pk"]["S"]: i for i in ddb.scan(TableName="tx")["Items"]}
        assert set(items) == {"a", "b"} and items["a"]["n"] == {"N": "1"}
        # And a transaction that succeeds applies every action
        ddb.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": "tx", "Key": {"pk": {"S": "b"}}}},
                {"Put": {"TableName": "tx", "Item": {"pk": {"S": "c"}}}},
            ]
        )
        assert {i["pk"]["S"] for i in ddb.scan(TableName="tx")["Items"]} == {"a", "c"}
        # without a copy of the table being taken for it
        from moto.dynamodb import models
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends["123456789012"]["eu-west-1"].get_table("tx")
        assert models.copy.deepcopy(table) is table


def _stream_records() -> list[tuple[str, str]]:
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends["123456789012"]["eu-west-1"].get_table("tx").stream_shard
    assert shard is not None
    return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in shard.get(shard.starting_sequence_number, 100)]


def test_a_cancelled_transaction_streams_nothing_and_a_committed_one_streams_its_writes_in_order() -> None:
    """adapters.transactions_snapshot_items: moto streamed a cancelled transaction's first writes (and its
    rollback); a DynamoDB stream holds committed changes only."""
    adapters.transactions_snapshot_items()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        ddb.create_table(
            TableName="tx",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        ddb.put_item(TableName="tx", Item={"pk": {"S": "a"}})
        # When a transaction puts b and c, then fails its last condition
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "tx", "Item": {"pk": {"S": "b"}}}},
                    {"Delete": {"TableName": "tx", "Key": {"pk": {"S": "a"}}}},
                    {
                        "Put": {
                            "TableName": "tx",
                            "Item": {"pk": {"S": "c"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        # Then the stream holds only the write before it
        assert _stream_records() == [("INSERT", "a")]
        # And a committed transaction's writes follow, in the order of its actions
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "tx", "Item": {"pk": {"S": "b"}}}},
                {"Delete": {"TableName": "tx", "Key": {"pk": {"S": "a"}}}},
            ]
        )
        ddb.put_item(TableName="tx", Item={"pk": {"S": "d"}})
        assert _stream_records() == [("INSERT", "a"), ("INSERT", "b"), ("REMOVE", "a"), ("INSERT", "d")]


def test_a_query_on_the_table_key_reads_only_its_partition_and_answers_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """adapters.queries_read_one_partition: moto sorted and compared every item of the table for each Query."""
    from boto3.dynamodb.conditions import Key
    from moto.dynamodb.models.dynamo_type import DynamoType

    adapters.queries_read_one_partition()
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="eu-west-1")
        table = resource.create_table(
            TableName="q",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        with table.batch_writer() as batch:
            for n in range(400):
                batch.put_item(Item={"pk": "big", "sk": n, "g": "x"})
            for n in (5, 1, 3, 2, 4):
                batch.put_item(Item={"pk": "small", "sk": n, "g": "y"})
        compared = {"n": 0}
        equals = DynamoType.__eq__

        def counting(self: Any, other: Any) -> bool:
            compared["n"] += 1
            return equals(self, other)

        monkeypatch.setattr(DynamoType, "__eq__", counting)
        # When a partition of five items is read back to front, two at a time, from the second on
        page = table.query(
            KeyConditionExpression=Key("pk").eq("small") & Key("sk").gt(1), ScanIndexForward=False, Limit=2
        )
        # Then the answer is DynamoDB's, and no item of the other partition was compared
        assert [i["sk"] for i in page["Items"]] == [5, 4] and page["LastEvaluatedKey"] == {"pk": "small", "sk": 4}
        assert compared["n"] < 50
        rest = table.query(
            KeyConditionExpression=Key("pk").eq("small") & Key("sk").gt(1),
            ScanIndexForward=False,
            ExclusiveStartKey=page["LastEvaluatedKey"],
        )
        assert [i["sk"] for i in rest["Items"]] == [3, 2]
        # And a partition that does not exist is empty, and an index is still queried across the table
        assert table.query(KeyConditionExpression=Key("pk").eq("none"))["Items"] == []
        assert [i["sk"] for i in table.query(IndexName="by-g", KeyConditionExpression=Key("g").eq("y"))["Items"]] == [
            1,
            2,
            3,
            4,
            5,
        ]
