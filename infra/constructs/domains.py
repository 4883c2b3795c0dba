"""The four tracking domains. Each owns its tenant-first table (point-in-time recovery, customer-managed key)
from day one; their issues add functions, routes, workflows and rules to these constructs."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.constructs.foundation import FoundationConstruct
from infra.constructs.tables import tenant_table


class DomainConstruct(Construct):
    """A domain with its own table; `TABLE_ID` names it in the template."""

    TABLE_ID = "Table"

    def __init__(self, scope: Construct, construct_id: str, *, foundation: FoundationConstruct) -> None:
        super().__init__(scope, construct_id)
        self.foundation = foundation
        self.table: dynamodb.Table = tenant_table(self, self.TABLE_ID, foundation.data_key)


class MessagesConstruct(DomainConstruct):
    """Candidate communications across email, SMS, in-app and Teams (seed 000)."""

    TABLE_ID = "MessagesTable"


class FailuresConstruct(DomainConstruct):
    """Recruitment workflow failures, alerts and routing (seed 001)."""

    TABLE_ID = "FailuresTable"


class RetentionConstruct(DomainConstruct):
    """Retention policies, erasure and application fingerprints (seed 002)."""

    TABLE_ID = "RetentionTable"


class AssetsConstruct(DomainConstruct):
    """Assets issued to hires, from offer acceptance to offboarding (seed 003)."""

    TABLE_ID = "AssetsTable"
