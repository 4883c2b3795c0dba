"""The eDiscovery export's state machine (issue 12, section 6; functions/messages/handlers/export_worker.py),
started by `MessageExportRequested` on the project bus:

    Step (Task, input: the event, then the previous step's output) -> Done? (Choice: $.done)
        -> Exported (Succeed) | back to Step
    Step's catch (any error once its retries are spent, the error at $.error)
        -> RecordFailure (Task: the job is marked failed and the failure audited) -> ExportFailed (Fail)

Only Task, Choice, Succeed and Fail, with Retry and Catch, so the same ASL runs on the local runtime's
interpreter. A step writes what it can within the time its invocation has left and hands over.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct


def export_definition(scope: Construct, *, step_function: lambda_.IFunction) -> sfn.IChainable:
    """The definition for `DomainConstruct.workflow("MessageExport", ...)`."""
    step = tasks.LambdaInvoke(
        scope, "ExportStep", lambda_function=step_function, payload_response_only=True, retry_on_service_exceptions=True
    )
    # A step starts from the job item (its segments, the cursor) and rewrites the segment it was writing, so a
    # failed invocation (throttling, an S3 or KMS error, a stale job) is tried again with the same input.
    step.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=3, backoff_rate=2)
    record_failure = tasks.LambdaInvoke(
        scope,
        "RecordExportFailure",
        lambda_function=step_function,
        payload_response_only=True,
        retry_on_service_exceptions=True,
    )
    record_failure.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=3, backoff_rate=2)
    step.add_catch(
        record_failure.next(sfn.Fail(scope, "ExportFailed", error="MessageExportFailed")),
        errors=["States.ALL"],
        result_path="$.error",
    )
    return step.next(
        sfn.Choice(scope, "ExportDone")
        .when(sfn.Condition.boolean_equals("$.done", True), sfn.Succeed(scope, "Exported"))
        .otherwise(step)
    )
