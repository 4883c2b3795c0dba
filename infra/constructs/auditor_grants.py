"""Just-in-time auditor access (issue 13): the auditor-grant routes of the platform domain, and the grant that every
function whose routes auditors use needs to read the grants.

`PlatformConstruct` calls `add_auditor_grant_routes(self, audit_table=audit_table)`; the other domains add
`auditor_grant_reads(platform_table)` to the `reads` of each route whose use case checks a permission the
`auditor` role holds (the permission check reads the grantee's grants with one strongly consistent Query).
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_

from infra.constructs.domain import DomainConstruct, TableUse, audit_appends

HANDLER = "functions.platform.handlers.auditor_grants.lambda_handler"
ROUTES = (
    ("POST", "/v1/auditor-grants"),
    ("GET", "/v1/auditor-grants"),
    ("GET", "/v1/auditor-grants/{grant_id}"),
    ("POST", "/v1/auditor-grants/{grant_id}/revoke"),
)


# The grants' partitions of the platform table (shared/access_grants.py), and nothing else of it (the client
# registry, the heartbeat): `T#<tenant>#GRANT#<grantee>` for the check, `T#<tenant>#GRANTS` for the routes.
GRANTEE_KEYS = "T#*#GRANT#*"
TENANT_KEYS = "T#*#GRANTS"


def auditor_grant_reads(platform_table: dynamodb.ITable) -> TableUse:
    """What a function needs to check an auditor's grants (shared/access_grants.py `DynamoGrantReader`): Query on
    the grantees' partitions of the platform table, nothing else; it also sets `PLATFORM_TABLE_NAME`."""
    return TableUse(platform_table, ("Query",), leading_keys=(GRANTEE_KEYS,))


def add_auditor_grant_routes(domain: DomainConstruct, *, audit_table: dynamodb.ITable) -> lambda_.Function:
    """The four auditor-grant routes on `domain` (the platform construct, whose table keeps the grants), served by
    one function: GetItem and Query on the grants' partitions of the table (read one, list), PutItem and UpdateItem
    there for the two-item transactions of giving and revoking, and inbox appends to the audit trail like every
    audited route."""
    keys = (GRANTEE_KEYS, TENANT_KEYS)
    reads = [TableUse(domain.table, ("GetItem", "Query"), leading_keys=keys)]
    writes = [TableUse(domain.table, ("PutItem", "UpdateItem"), leading_keys=keys), audit_appends(audit_table)]
    fn: lambda_.Function | None = None
    for method, path in ROUTES:
        # No scopes: people call these with their ID token, and `authorize` admits compliance officers only.
        fn = domain.route(method, path, handler=HANDLER, reads=reads, writes=writes)
    assert fn is not None
    return fn
