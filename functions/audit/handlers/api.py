"""The audit domain's API, one function for its routes (docs/audit.md):

- auditor exports of the trail, POST /v1/audit-exports and GET /v1/audit-exports/{export_id}
  (functions/audit/handlers/export_routes.py, docs/audit-exports.md);
- the tenant's thresholds for anomalous access, GET and PUT /v1/audit-alert-policy
  (functions/audit/handlers/alert_policy_routes.py, docs/audit-alerts.md).

Each route module is a Powertools router; this module builds the resolver they share (the project's error mapping,
the request's audit entries written in one insert) and is the function's handler.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.audit.handlers import alert_policy_routes, export_routes
from shared.http import build_resolver
from shared.observability import logger, metrics, tracer

app = build_resolver()
app.include_router(export_routes.router)
app.include_router(alert_policy_routes.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
