"""Retention figures (issue 11), counted rather than timed where they can be, into `.local/bench/results.json`:

- `retention.duplicate_check.reads_per_application`: DynamoDB read requests that touch fingerprints when one
  application is submitted, with 10 and with 100,000 fingerprints already on the vacancy (the worse of the two);
- `retention.sweep.items_read_per_removed` and `retention.sweep.requests_per_removed`: the daily sweep over
  10,000 due records (suggested candidates, registrations and applications of removed vacancies), every AWS
  request of the run counted (DynamoDB, EventBridge, S3, KMS, audit included);
- `retention.erasure.seconds`: from an applicant's erasure request to its receipt, over HTTP on the local runtime,
  beside the 30 days that GDPR allows.

The first three run in process on moto (the integration tier's setup); the last starts the local runtime.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.results import Figure, record

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
GDPR_SECONDS = 30 * 24 * 3600
SWEEP_RECORDS = 10_000
FINGERPRINTS = (10, 100_000)

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "ats-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "AtsBench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "LOG_LEVEL": "WARNING",
    "STAGE": "bench",
    "SERVICE_VERSION": "bench",
    "AUDIT_TABLE_NAME": "bench-audit",
    "RETENTION_TABLE_NAME": "bench-retention",
    "RETENTION_KEYS_TABLE_NAME": "bench-retention-keys",
    "ARCHIVE_BUCKET_NAME": "bench-archive",
    "EXPORT_BUCKET_NAME": "bench-exports",
    "TENANT_SECRET_PREFIX": "bench/tenants/",
    "EVENT_BUS_NAME": "bench-bus",
}


# --- the world on moto -------------------------------------------------------------------------------------------


@contextmanager
def moto_world() -> Iterator[dict[str, str]]:
    """The retention domain's resources on moto, in process, with the functions' environment."""
    from moto import mock_aws

    from shared.aws import client, reset_clients
    from shared.secrets import new_keyring
    from shared.settings import _load
    from tests.integration.conftest import _create_tenant_table, retention_indexes

    saved = {name: os.environ.get(name) for name in ENV}
    os.environ.update(ENV)
    reset_clients()
    _load.cache_clear()
    try:
        with mock_aws():
            ddb = client("dynamodb")
            # the integration tier's tables: the key schema and indexes of the template
            for table, table_indexes in (
                (ENV["AUDIT_TABLE_NAME"], {}),
                (ENV["RETENTION_TABLE_NAME"], retention_indexes()),
                (ENV["RETENTION_KEYS_TABLE_NAME"], {}),
            ):
                _create_tenant_table(ddb, table, table_indexes)
            key = client("kms").create_key(Description="bench data key")["KeyMetadata"]["Arn"]
            os.environ["DATA_KEY_ARN"] = key
            client("events").create_event_bus(Name=ENV["EVENT_BUS_NAME"])
            s3 = client("s3")
            for bucket in (ENV["ARCHIVE_BUCKET_NAME"], ENV["EXPORT_BUCKET_NAME"]):
                s3.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={"LocationConstraint": REGION},
                    ObjectLockEnabledForBucket=bucket == ENV["EXPORT_BUCKET_NAME"],
                )
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            for tenant in ("acme", "globex"):
                for kind in ("hmac", "webhook/outbound"):
                    client("secretsmanager").create_secret(
                        Name=f"{ENV['TENANT_SECRET_PREFIX']}{tenant}/{kind}", SecretString=new_keyring()
                    )
            yield {"data_key": key}
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_clients()
        _load.cache_clear()


def _put_directly(table: str, items: list[dict[str, Any]]) -> None:
    """Seed many items straight into moto's backend (100,000 fingerprints through the API would take minutes)."""
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[ACCOUNT][REGION].get_table(table)
    for item in items:
        backend.put_item(item)


@contextmanager
def counted(*services: str) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Every request the shared clients of `services` make, as (service, operation, params)."""
    from shared.aws import client

    calls: list[tuple[str, str, dict[str, Any]]] = []
    hooks: list[tuple[Any, str, Callable[..., None]]] = []
    for service in services:
        c = client(service)

        def hook(model: Any, params: dict[str, Any], _service: str = service, **_: Any) -> None:
            calls.append((_service, model.name, params))

        event = f"before-call.{c.meta.service_model.service_name}"
        c.meta.events.register(event, hook)
        hooks.append((c, event, hook))
    try:
        yield calls
    finally:
        for c, event, hook in hooks:
            c.meta.events.unregister(event, hook)


# --- the duplicate check -----------------------------------------------------------------------------------------


def _api_event(path: str, resource: str, parameters: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    claims = {
        "sub": "bench-ats",
        "client_id": "bench-ats",
        "token_use": "access",
        "scope": "ats/retention.write",
        "custom:tenant": "acme",
        "version": "2",
    }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "PUT",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "PUT",
            "path": path,
            "requestId": f"bench-{uuid.uuid4().hex}",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": {"claims": claims},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _context() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        function_name="bench",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )


def _call(handler: Any, path: str, resource: str, parameters: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = handler(_api_event(path, resource, parameters, body), _context())
    if response["statusCode"] >= 300:
        raise RuntimeError(f"{path}: {response['statusCode']} {response['body']}")
    return dict(json.loads(response["body"]))


def _report_vacancy(vacancy_id: str, **body: Any) -> None:
    from functions.retention.handlers import vacancies

    _call(
        vacancies.lambda_handler,
        f"/v1/vacancies/{vacancy_id}",
        "/v1/vacancies/{vacancy_id}",
        {"vacancy_id": vacancy_id},
        body,
    )


def _apply(vacancy_id: str, application_id: str, person_id: str, email: str, submitted: datetime) -> dict[str, Any]:
    from functions.retention.handlers import records

    return _call(
        records.lambda_handler,
        f"/v1/vacancies/{vacancy_id}/applications/{application_id}",
        "/v1/vacancies/{vacancy_id}/applications/{application_id}",
        {"vacancy_id": vacancy_id, "application_id": application_id},
        {
            "person_id": person_id,
            "person": {"name": "Bench Applicant", "email": email},
            "submitted_at": submitted.isoformat(),
            "source": "careers_site",
            "stages": ["applied"],
            "outcome": "pending",
        },
    )


def duplicate_check_reads(stored: int) -> int:
    """Read requests that touch fingerprints while a duplicate application is checked, `stored` on the vacancy."""
    from functions.retention.dal.items import key, vacancy_pk

    with moto_world():
        now = datetime.now(UTC)
        vacancy = f"v-dup-{stored}"
        _report_vacancy(vacancy, status="open", opened_at=(now - timedelta(days=3)).isoformat())
        _apply(vacancy, "a-0", "p-0", "first.applicant@example.com", now)
        _put_directly(
            ENV["RETENTION_TABLE_NAME"],
            [
                {**key(vacancy_pk("acme", vacancy), f"FP#h1#{os.urandom(32).hex()}"), "tenant": {"S": "acme"}}
                for _ in range(stored - 1)
            ],
        )
        with counted("dynamodb") as calls:
            answer = _apply(vacancy, "a-1", "p-1", "  FIRST.Applicant@example.com ", now)
        if answer.get("duplicate") is not True:
            raise RuntimeError(f"the re-application was not flagged as a duplicate: {answer}")
        reads = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
        return sum(1 for _, op, params in calls if op in reads and "FP#" in json.dumps(params, default=str))


# --- erasure on the local runtime ----------------------------------------------------------------------------------


def erasure_seconds() -> float:
    """Seconds from an applicant's erasure request to its receipt, over HTTP on the local runtime."""
    import subprocess

    sys.path.insert(0, str(ROOT))
    from tests.e2e.conftest import Api, start_runtime, stop_runtime

    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        out = Path(tmp) / "cdk.out"
        env = {**os.environ, "CDK_OUTDIR": str(out), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
        subprocess.run([sys.executable, "-m", "infra.app"], cwd=ROOT, env=env, check=True, capture_output=True)
        process, session, log = start_runtime(out, Path(tmp))
        try:
            api = Api(session, log)
            ats = str(session["integration_tokens"]["acme"])
            now = datetime.fromisoformat(api.call("GET", "/_local/clock")[1]["now"])
            vacancy, person = f"v-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
            body = {"status": "open", "opened_at": (now - timedelta(days=1)).isoformat()}
            assert api.call("PUT", f"/v1/vacancies/{vacancy}", ats, body=body)[0] == 201
            for n in range(3):  # one person, three applications on one vacancy: the erasure has work to do
                application = {
                    "person_id": person,
                    "person": {"name": "Bench Eraser", "email": "bench.eraser@example.com"},
                    "submitted_at": now.isoformat(),
                    "source": "careers_site",
                    "stages": ["applied"],
                    "outcome": "pending",
                }
                status, answer = api.call("PUT", f"/v1/vacancies/{vacancy}/applications/a-{n}", ats, body=application)
                assert status == 201, answer
            status, link = api.call("POST", f"/v1/people/{person}/self-service-links", ats, body={"ttl_minutes": 5})
            assert status == 201, link
            started = time.perf_counter()
            status, receipt = api.call("POST", "/v1/self-service/erasure", body={"token": link["token"]})
            elapsed = time.perf_counter() - started
            if status != 200 or receipt.get("status") != "completed":
                raise RuntimeError(f"erasure failed: {status} {receipt}")
            return elapsed
        finally:
            stop_runtime(process)


# --- the sweep ----------------------------------------------------------------------------------------------------


def sweep_costs(records: int = SWEEP_RECORDS) -> tuple[float, float, Counter[str]]:
    """(items read per removed record, AWS requests per removed record, requests by operation) for a sweep
    over `records` due records."""
    from benchmarks._sweep import run_counted_sweep

    with moto_world():
        return run_counted_sweep(
            records, counted=counted, put_directly=_put_directly, table=ENV["RETENTION_TABLE_NAME"]
        )


def main() -> None:
    reads = {stored: duplicate_check_reads(stored) for stored in FINGERPRINTS}
    print(f"duplicate check: fingerprint reads per application {reads}")
    items_per_removed, requests_per_removed, by_operation = sweep_costs()
    print(
        f"sweep over {SWEEP_RECORDS} due records: {items_per_removed:.3f} items read and "
        f"{requests_per_removed:.3f} requests per removed record; {dict(by_operation)}"
    )
    seconds = erasure_seconds()
    print(f"erasure: {seconds:.3f} s from request to receipt (GDPR allows {GDPR_SECONDS} s)")
    path = record(
        [
            Figure("retention.duplicate_check.reads_per_application", max(reads.values()), "requests", 1),
            *(
                Figure(f"retention.duplicate_check.reads_per_application.with_{n}_fingerprints", v, "requests")
                for n, v in reads.items()
            ),
            Figure("retention.sweep.items_read_per_removed", round(items_per_removed, 4), "items", 1.1),
            Figure("retention.sweep.requests_per_removed", round(requests_per_removed, 4), "requests", 0.3),
            Figure("retention.erasure.seconds", round(seconds, 3), "s", GDPR_SECONDS),
        ]
    )
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
