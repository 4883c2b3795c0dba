"""The daily message tiering's state machine (issue 12, section 5; functions/messages/handlers/tiering.py): start,
then per tenant a loop of pages until its three phases (delete, cold, warm) are done.

    Start (Task) -> Tenants (Map over $.tenants, MaxConcurrency 2)
                      [ Page (Task) -> Done? (Choice: $.done) -> TenantTiered (Succeed) | back to Page ]
                 -> Tiered (Succeed)

Only Task, Choice, Map (inline, ItemsPath) and Succeed, as the retention sweep (infra/constructs/retention_sweep.py),
so the same ASL runs on the local runtime's interpreter. A page handles at most 100 messages, so no invocation
nears Lambda's time limit however large a tenant is.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

MAX_TENANTS_IN_PARALLEL = 2


def _step(scope: Construct, name: str, function: lambda_.IFunction, payload: dict[str, object]) -> tasks.LambdaInvoke:
    task = tasks.LambdaInvoke(
        scope,
        name,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        retry_on_service_exceptions=True,
    )
    # A page is safe to repeat (what it moved left its phase's filter, what it deleted is gone), so a failed
    # invocation (throttling, an S3 or KMS error) is simply tried again with the same input.
    task.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(2), max_attempts=4, backoff_rate=2)
    return task


def tiering_definition(scope: Construct, *, step_function: lambda_.IFunction) -> sfn.IChainable:
    """The definition for `DomainConstruct.workflow("DailyTiering", ...)`; its input is ignored."""
    start = _step(
        scope,
        "StartTiering",
        step_function,
        {"step": "start", "execution": sfn.JsonPath.string_at("$$.Execution.Name")},
    )
    page = _step(scope, "TieringPage", step_function, {"step": "page", "state": sfn.JsonPath.object_at("$")})
    loop = page.next(
        sfn.Choice(scope, "TenantTiered")
        .when(sfn.Condition.boolean_equals("$.done", True), sfn.Succeed(scope, "TenantTieringDone"))
        .otherwise(page)
    )
    tenants = sfn.Map(
        scope,
        "TierTenants",
        items_path="$.tenants",
        max_concurrency=MAX_TENANTS_IN_PARALLEL,
        result_path="$.tiered",
    )
    tenants.item_processor(loop)
    return start.next(tenants).next(sfn.Succeed(scope, "Tiered", output_path="$.tiered"))
