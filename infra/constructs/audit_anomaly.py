"""Anomalous-access alerts (issue 13 §7, docs/audit-alerts.md): what the audit domain adds for them. No function of
its own: the linker, which sees every new entry of every tenant, counts them and publishes `AlertRaised`.

- The linker may `UpdateItem` the detector's counters (`T#*#AUDIT#ANOMALY#*`) and nothing else of the table
  (its other writes stay inserts), and `events:PutEvents` on the project bus (`EVENT_BUS_NAME`).
- `GET`/`PUT /v1/audit-alert-policy` on the audit API function: `Query` and conditional `PutItem` (a new
  version) of `T#*#AUDIT#ALERTPOLICY` only, besides the inbox inserts every audited function has.
- One alarm: an alert raised, or the detector failing (until a domain consumes `AlertRaised`, the alarm topic is
  where a person hears of either).

Called by AuditConstruct (infra/constructs/audit.py): `add_anomaly_detection(self, linker)` once the linker is
built, `add_alert_policy_routes(self)` beside the other audit routes.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_

from infra import constants
from infra.constructs.domain import DomainConstruct, TableUse, audit_appends

LINKER_HANDLER = "functions.audit.handlers.linker.lambda_handler"
API_HANDLER = "functions.audit.handlers.api.lambda_handler"
POLICY_PATH = "/v1/audit-alert-policy"
COUNTER_KEYS = "T#*#AUDIT#ANOMALY#*"  # functions/audit/dal/anomaly.py
POLICY_KEYS = "T#*#AUDIT#ALERTPOLICY"  # functions/audit/dal/alert_policy.py
ALERTS_METRIC = "AuditAlertsRaised"
ERRORS_METRIC = "AnomalyDetectorErrors"


def add_anomaly_detection(audit: DomainConstruct, linker: lambda_.Function, *, alarm: bool = True) -> None:
    """Let the linker count and alert: UpdateItem on the counters' keys, PutEvents on the bus, and (unless
    `alarm=False`) one alarm on alerts raised and detector errors."""
    fn = audit.function(
        "Linker",
        LINKER_HANDLER,
        description="(the linker: already built)",
        writes=[TableUse(audit.table, ("UpdateItem",), leading_keys=(COUNTER_KEYS,))],
        bus=True,
    )
    if fn is not linker:
        raise ValueError("add_anomaly_detection: pass the audit linker, built before this call")
    if alarm:
        audit.foundation.alarm(
            audit,
            "AnomalousAccessAlarm",
            "Anomalous access to a tenant's data (an AlertRaised event: see its detail on the bus or in the linker's "
            "log), or the audit linker's anomaly detector failed (AnomalyDetectorErrors)",
            cloudwatch.MathExpression(
                expression="FILL(alerts, 0) + FILL(errors, 0)",
                using_metrics={"alerts": _metric(ALERTS_METRIC), "errors": _metric(ERRORS_METRIC)},
                label="Anomalous-access alerts and detector errors",
                period=Duration.minutes(5),
            ),
        )


def add_alert_policy_routes(audit: DomainConstruct) -> None:
    """`GET` and `PUT /v1/audit-alert-policy` on the audit API function (compliance officers, checked in it)."""
    policy_reads = TableUse(audit.table, ("Query",), leading_keys=(POLICY_KEYS,))
    policy_inserts = TableUse(audit.table, ("PutItem",), leading_keys=(POLICY_KEYS,))
    audit.route(
        "GET",
        POLICY_PATH,
        handler=API_HANDLER,
        name="AuditApi",
        reads=[policy_reads],
        writes=[audit_appends(audit.table)],
    )
    audit.route(
        "PUT",
        POLICY_PATH,
        handler=API_HANDLER,
        name="AuditApi",
        reads=[policy_reads],
        writes=[audit_appends(audit.table), policy_inserts],
    )


def _metric(name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=constants.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": constants.SERVICE_NAME},
        statistic="Sum",
        period=Duration.minutes(5),
    )
