"""The one way to declare a DynamoDB table: tenant-first string keys, on demand, PITR, customer-managed key."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.stage import StageConfig


def tenant_table(
    scope: Construct,
    construct_id: str,
    key: kms.IKey,
    stage: StageConfig,
    *,
    indexes: Mapping[str, tuple[str, str]] | None = None,
    point_in_time_recovery: bool = True,
    ttl_attribute: str | None = None,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """`indexes` maps a global secondary index's name to its (partition, sort) attributes, projecting all; both are
    strings, except a sort attribute written `name:N`, a number.

    `point_in_time_recovery=False` only for a table whose items must not outlive their deletion in any backup
    (the retention domain's per-person keys: crypto-shredding, docs/decisions.md). `ttl_attribute` names the
    number attribute (epoch seconds) after which DynamoDB deletes an item (webhook deduplication markers)."""
    # dynamodb.Table (AWS::DynamoDB::Table), not TableV2: the local emulator cannot deploy GlobalTable.
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=point_in_time_recovery
        ),
        deletion_protection=stage.deletion_protection,
        removal_policy=stage.removal_policy,
        time_to_live_attribute=ttl_attribute,
        stream=stream,
    )
    for name, (partition, sort) in (indexes or {}).items():
        sort_name, _, sort_type = sort.partition(":")
        table.add_global_secondary_index(
            index_name=name,
            partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(
                name=sort_name,
                type=dynamodb.AttributeType.NUMBER if sort_type == "N" else dynamodb.AttributeType.STRING,
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return table
