"""The retention domain. Retention policies, erasure and application fingerprints (seed 002).

The ATS reports the records whose timeline the policy follows, starting with its vacancies (integration clients,
scope `ats/retention.write`); the rest of the domain (policy, sweep, erasure, fingerprints) adds routes, consumers
and workflows with the helpers of `DomainConstruct` (docs/recipe.md)."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.constructs.api import ApiConstruct
from infra.constructs.domain import DomainConstruct, only
from infra.constructs.foundation import FoundationConstruct
from shared.auth import Scope

_VACANCIES = "functions.retention.handlers.vacancies.lambda_handler"


class RetentionConstruct(DomainConstruct):
    TABLE_ID = "RetentionTable"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: FoundationConstruct,
        api: ApiConstruct,
        audit_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id, foundation=foundation, api=api)
        audited = [only(audit_table, "PutItem")]
        self.route(
            "PUT",
            "/v1/vacancies/{vacancy_id}",
            handler=_VACANCIES,
            reads=[only(self.table, "GetItem"), only(audit_table, "GetItem")],
            writes=[only(self.table, "PutItem", "UpdateItem"), *audited],
            scopes=[Scope.RETENTION_WRITE],
        )
        self.route(
            "GET",
            "/v1/vacancies/{vacancy_id}",
            handler=_VACANCIES,
            reads=[only(self.table, "GetItem"), only(audit_table, "GetItem")],
            writes=audited,
        )
