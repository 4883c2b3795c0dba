"""The daily retention sweep's state machine definition (issue 11, section 3): start, then per tenant a loop of
pages until done, then the tenant's report.

    Start (Task) -> Tenants (Map over $.tenants, MaxConcurrency 2)
                      [ Page (Task) -> Done? (Choice: $.done) -> Report (Task) | back to Page ]
                 -> Swept (Succeed)

Only Task, Choice, Map (inline, ItemsPath) and Succeed, so the same ASL runs on the local runtime's interpreter.
Each page does at most 100 records, so no invocation nears Lambda's time limit however large a tenant is. In AWS
an inline Map keeps every iteration's events in the one execution's history (25,000 events: about 3,000 pages,
some 300,000 records a night); past that the Map becomes a Distributed Map (`sfn.DistributedMap`, each tenant a
child execution with its own history) around the same iteration, with no change to the functions.
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
    # A page is safe to repeat (its transaction writes a marker; a retry repeats only what follows it), so a
    # failed invocation (throttling, a transaction conflict, an event publish failure) is simply tried again.
    task.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(2), max_attempts=4, backoff_rate=2)
    return task


def sweep_definition(scope: Construct, *, step_function: lambda_.IFunction) -> sfn.IChainable:
    """The definition for `DomainConstruct.workflow("DailySweep", ...)`; its input is `{"dry_run": bool}`."""
    start = _step(
        scope,
        "StartSweep",
        step_function,
        {
            "step": "start",
            "input": sfn.JsonPath.object_at("$"),
            "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
        },
    )
    page = _step(scope, "SweepPage", step_function, {"step": "page", "state": sfn.JsonPath.object_at("$")})
    report = _step(scope, "ReportSweep", step_function, {"step": "report", "state": sfn.JsonPath.object_at("$")})
    loop = page.next(
        sfn.Choice(scope, "TenantSwept").when(sfn.Condition.boolean_equals("$.done", True), report).otherwise(page)
    )
    tenants = sfn.Map(
        scope,
        "SweepTenants",
        items_path="$.tenants",
        max_concurrency=MAX_TENANTS_IN_PARALLEL,
        result_path="$.reports",
    )
    tenants.item_processor(loop)
    return start.next(tenants).next(sfn.Succeed(scope, "Swept", output_path="$.reports"))
