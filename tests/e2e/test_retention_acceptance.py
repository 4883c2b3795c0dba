"""Issue 11's acceptance on the local runtime: the seed's timeline played by moving the clock and letting the
daily sweep fire, an applicant's self-erasure through their link, policy permissions, tenant isolation, and the
sweep's idempotence and dry run.

Seed 002 (../shared/seeds/002): "Applicant data is retained based on a cumulative approach to data retention
based on a few key points in the time-line of a vacancy and application."
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from tests.e2e.conftest import Api, wait_for

PII = {"name": "Dana Whitfield-Orr", "email": "Dana.Whitfield@Example.com", "phone": "+44 20 7946 0958"}
PII_NEEDLES = ("Dana", "Whitfield", "dana.whitfield@example.com", "+442079460958", "7946 0958")
POLICY = {
    "candidate_months": 3,
    "registration_months": 6,
    "archive_after_months": 3,
    "keep_archived_months": 6,
    "keep_applicants_months": 3,
    "fingerprint_fields": ["email"],
}


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _now(runtime: Api) -> datetime:
    return datetime.fromisoformat(runtime.call("GET", "/_local/clock")[1]["now"])


def _integration(runtime: Api, tenant: str = "acme") -> str:
    return str(runtime.session["integration_tokens"][tenant])


def _sweep_machine(runtime: Api) -> str:
    machines = runtime.aws("stepfunctions").list_state_machines()["stateMachines"]
    return str(next(m["stateMachineArn"] for m in machines if "DailySweep" in m["name"]))


def _settle_sweeps(runtime: Api) -> None:
    """Wait until no sweep execution is running."""
    sfn = runtime.aws("stepfunctions")
    machine = _sweep_machine(runtime)

    def settled() -> bool:
        return not sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]

    assert wait_for(settled, timeout=120), "a sweep execution kept running"
    failed = sfn.list_executions(stateMachineArn=machine, statusFilter="FAILED")["executions"]
    causes = [sfn.describe_execution(executionArn=e["executionArn"]) for e in failed]
    assert not failed, [(c.get("error"), c.get("cause")) for c in causes]


def _advance_to(runtime: Api, moment: datetime) -> None:
    """Move the service clock to `moment`: the daily sweep's schedule falls due and fires; wait for it."""
    seconds = (moment - _now(runtime)).total_seconds()
    assert seconds > 0, f"the clock is already past {moment}"
    status, body = runtime.call("POST", "/_local/clock/advance", body={"seconds": seconds})
    assert status == 200, body
    wait_for(lambda: False, timeout=0.5)
    _settle_sweeps(runtime)


def _put(runtime: Api, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    status, answer = runtime.call("PUT", path, token or _integration(runtime), body=body)
    assert status in (200, 201), (path, status, answer)
    return answer


def _status_of(runtime: Api, path: str) -> int:
    return runtime.call("GET", path, _integration(runtime))[0]


def _vacancy(runtime: Api, vacancy_id: str) -> dict[str, Any]:
    status, body = runtime.call("GET", f"/v1/vacancies/{vacancy_id}", _integration(runtime))
    assert status == 200, body
    return dict(body)


def _set_policy(runtime: Api, tenant: str = "acme", **changes: Any) -> dict[str, Any]:
    admin = runtime.token(tenant, "company_admin")
    current = runtime.call("GET", "/v1/retention-policy", admin)[1]
    body = {**POLICY, **changes, "expected_version": current["version"]}
    status, answer = runtime.call("PUT", "/v1/retention-policy", admin, body=body)
    assert status == 200, answer
    return dict(answer)


def _report_vacancy(runtime: Api, vacancy_id: str, *, status: str, opened: datetime, **dates: datetime) -> None:
    body: dict[str, Any] = {"status": status, "opened_at": _iso(opened), **{k: _iso(v) for k, v in dates.items()}}
    if vacancy_id.startswith("tp-"):
        body["kind"] = "talent_pool"
    _put(runtime, f"/v1/vacancies/{vacancy_id}", body)


def _apply(runtime: Api, vacancy_id: str, application_id: str, person_id: str, person: dict[str, str]) -> Any:
    return _put(
        runtime,
        f"/v1/vacancies/{vacancy_id}/applications/{application_id}",
        {
            "person_id": person_id,
            "person": person,
            "submitted_at": _iso(_now(runtime)),
            "source": "careers_site",
            "stages": ["applied"],
            "outcome": "pending",
        },
    )


def test_a_policy_edit_by_a_recruiter_is_forbidden_and_an_out_of_bounds_value_names_its_bound(runtime: Api) -> None:
    """Seed 002: 'To edit your organisations data retention policies you must be have the "Company Admin" or
    "Account Admin" security role.' and 'retaining candidate records is limited to a choice of three to six
    months'."""
    body = {**POLICY, "expected_version": 0}
    assert runtime.call("PUT", "/v1/retention-policy", runtime.token("acme", "recruiter"), body=body)[0] == 403
    status, answer = runtime.call(
        "PUT", "/v1/retention-policy", runtime.token("acme", "account_admin"), body={**body, "candidate_months": 7}
    )
    assert status == 400 and "candidates are kept 3 to 6 months" in json.dumps(answer), answer


def test_an_applicant_erases_themselves_and_a_reapplication_is_still_caught(runtime: Api) -> None:
    """Seed 002: 'Applicants always have the power to remove their data at any time.' and 'If the fingerprint
    matches an existing one, then the application is identified as a duplicate.'"""
    _set_policy(runtime)
    vacancy, person = _id("v-erase"), _id("p-erase")
    _report_vacancy(runtime, vacancy, status="open", opened=_now(runtime) - timedelta(days=2))
    first = _apply(runtime, vacancy, _id("a"), person, PII)
    assert first["duplicate"] is False
    # When the ATS asks for a link and the applicant erases themselves with it
    status, link = runtime.call(
        "POST", f"/v1/people/{person}/self-service-links", _integration(runtime), body={"ttl_minutes": 30}
    )
    assert status == 201, link
    status, receipt = runtime.call("POST", "/v1/self-service/erasure", body={"token": link["token"]})
    assert status == 200, receipt
    assert receipt["status"] == "completed" and receipt["removed"]["application"] == 1
    received = datetime.fromisoformat(receipt["received_at"])
    assert datetime.fromisoformat(receipt["deadline_at"]) == received + relativedelta(months=1)
    assert receipt["seconds_taken"] is not None and receipt["seconds_taken"] < 30 * 24 * 3600
    # Then the link is spent, and the receipt can be read back by the ATS
    assert runtime.call("POST", "/v1/self-service/erasure", body={"token": link["token"]})[0] == 401
    assert runtime.call("GET", f"/v1/subject-requests/{receipt['request_id']}", _integration(runtime))[0] == 200
    # Then no stored item, object version, queued message or log line holds their name, email or phone
    _assert_nowhere(runtime, PII_NEEDLES)
    # And the anonymised reporting copy exists in the vacancy's partition
    assert _anonymised_copies(runtime, vacancy) == 1
    # When they re-apply with the email's case and spaces changed: a duplicate; a different email: not
    again = {**PII, "email": "  dana.WHITFIELD@example.COM "}
    assert _apply(runtime, vacancy, _id("a"), _id("p"), again)["duplicate"] is True
    other = {**PII, "email": "someone.else@example.com"}
    assert _apply(runtime, vacancy, _id("a"), _id("p"), other)["duplicate"] is False


def _assert_nowhere(runtime: Api, needles: tuple[str, ...]) -> None:
    ddb, s3, sqs = runtime.aws("dynamodb"), runtime.aws("s3"), runtime.aws("sqs")
    lowered = [n.lower() for n in needles]

    def holds(text: str) -> list[str]:
        return [n for n in lowered if n in text.lower()]

    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                assert not holds(json.dumps(item, default=str)), (table, item)
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket["Name"]):
            for version in page.get("Versions", []):
                obj = s3.get_object(Bucket=bucket["Name"], Key=version["Key"], VersionId=version["VersionId"])
                body = obj["Body"].read()
                assert not holds(body.decode(errors="replace")), (bucket["Name"], version["Key"])
    for url in sqs.list_queues().get("QueueUrls", []):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        for message in messages:
            assert not holds(message["Body"]), url
    assert runtime.log is not None
    assert not holds(runtime.log.read_text(errors="replace")), "personal data in the runtime's logs"


def _anonymised_copies(runtime: Api, vacancy_id: str) -> int:
    ddb = runtime.aws("dynamodb")
    table = runtime.resource("RetentionRetentionTable")
    found = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :anon)",
        ExpressionAttributeValues={":pk": {"S": f"T#acme#VACANCY#{vacancy_id}"}, ":anon": {"S": "ANON#"}},
    )["Items"]
    for item in found:
        assert "person_id" not in item and "application_id" not in item
    return len(found)


def test_the_seeds_timeline_played_by_moving_the_clock(runtime: Api) -> None:
    """Seed 002: 'Initially vacancies are archived after they've been closed for a specified period of time',
    'Archived vacancies can then be retained for a period of three months to three years after they've been
    archived', 'Applicants are then retained for a further period of three months to three years after the
    archived vacancies have been removed.', 'All of these limits are "upper limits"', 'Candidate records that are
    marked as "Invited" or as "Applied" are retained regardless of the limit', 'People who register against a
    talent pool vacancy can be retained for between six months and three years from the point of their
    registration.'"""
    _set_policy(runtime)
    day0 = _now(runtime)
    opened = day0 - timedelta(days=30)
    main, early, held, pool = _id("v-main"), _id("v-early"), _id("v-held"), _id("tp-pool")
    suggested, invited, applicant = _id("p-sugg"), _id("p-inv"), _id("p-app")
    application = _id("a-main")
    # Given a vacancy closed on day 0, one archived early on day 10, one under a legal hold, and a talent pool
    for vacancy in (main, early, held):
        _report_vacancy(runtime, vacancy, status="closed", opened=opened, closed_at=day0)
    _report_vacancy(runtime, pool, status="open", opened=opened)
    for person in (suggested, invited):
        _put(
            runtime,
            f"/v1/vacancies/{pool}/registrations/{person}",
            {"registered_at": _iso(day0), "person": {"name": "Pool Member", "email": f"{person}@example.org"}},
        )
        _put(
            runtime,
            f"/v1/vacancies/{main}/candidates/{person}",
            {"status": "suggested", "matched_at": _iso(day0)},
        )
    _put(runtime, f"/v1/vacancies/{main}/candidates/{invited}", {"status": "invited", "matched_at": _iso(day0)})
    _apply(runtime, main, application, applicant, {"name": "Ann Applicant", "email": f"{applicant}@example.org"})
    held_application = _id("a-held")
    _apply(runtime, held, held_application, _id("p-held"), {"name": "Hal Held", "email": "hal.held@example.org"})
    officer = runtime.token("acme", "compliance_officer")
    hold = _id("hold")
    status, placed = runtime.call(
        "PUT",
        f"/v1/legal-holds/{hold}",
        officer,
        body={
            "subject_kind": "vacancy",
            "subject_id": held,
            "reason": "employment tribunal claim",
            "owner": "legal-team",
            "review_at": _iso(day0 + timedelta(days=400)),
        },
    )
    assert status == 201, placed

    month = lambda n, days=0: day0 + relativedelta(months=n) + timedelta(days=days)  # noqa: E731

    # Month 3 minus a day: nothing has moved
    _advance_to(runtime, month(3, -1))
    assert _vacancy(runtime, main)["status"] == "closed"
    assert _status_of(runtime, f"/v1/vacancies/{main}/candidates/{suggested}") == 200
    _report_vacancy(
        runtime, early, status="archived", opened=opened, closed_at=day0, archived_at=day0 + timedelta(days=10)
    )
    # Month 3: archived; the suggested candidate's link is gone, the invited one stays; the held vacancy stays
    _advance_to(runtime, month(3, 0) + timedelta(hours=1))
    assert _vacancy(runtime, main)["status"] == "archived"
    assert _status_of(runtime, f"/v1/vacancies/{main}/candidates/{suggested}") == 404
    assert _status_of(runtime, f"/v1/vacancies/{main}/candidates/{invited}") == 200
    assert _status_of(runtime, f"/v1/vacancies/{pool}/registrations/{suggested}") == 200
    assert _vacancy(runtime, held)["status"] == "closed"
    # Month 6: the talent-pool registrations reach their limit
    _advance_to(runtime, month(6, 0) + timedelta(hours=1))
    assert _status_of(runtime, f"/v1/vacancies/{pool}/registrations/{suggested}") == 404
    # The early-archived vacancy is removed 6 months after its archiving (day 10), not after the main one's
    early_removal = day0 + timedelta(days=10) + relativedelta(months=6)
    _advance_to(runtime, early_removal - timedelta(days=1))
    assert _vacancy(runtime, early)["status"] == "archived"
    _advance_to(runtime, early_removal + timedelta(hours=1))
    assert _vacancy(runtime, early)["status"] == "removed"
    # Month 9: the main vacancy is removed, not a day earlier; its applicant is still kept
    _advance_to(runtime, month(9, -1))
    assert _vacancy(runtime, main)["status"] == "archived"
    _advance_to(runtime, month(9, 0) + timedelta(hours=1))
    assert _vacancy(runtime, main)["status"] == "removed"
    assert _status_of(runtime, f"/v1/vacancies/{main}/applications/{application}") == 200
    # Month 12: its applicants go, not a day earlier; with them the invited candidate, kept until now
    _advance_to(runtime, month(12, -1))
    assert _status_of(runtime, f"/v1/vacancies/{main}/applications/{application}") == 200
    _advance_to(runtime, month(12, 0) + timedelta(hours=1))
    assert _status_of(runtime, f"/v1/vacancies/{main}/applications/{application}") == 404
    assert _status_of(runtime, f"/v1/vacancies/{main}/candidates/{invited}") == 404
    assert _status_of(runtime, f"/v1/vacancies/{main}") == 404
    # The legal hold stopped all of it until released: the held vacancy is still closed at month 12, with its
    # applicant. Once released, the next sweep catches up every phase whose upper limit has passed: all of it goes.
    assert _vacancy(runtime, held)["status"] == "closed"
    assert _status_of(runtime, f"/v1/vacancies/{held}/applications/{held_application}") == 200
    status, _ = runtime.call("POST", f"/v1/legal-holds/{hold}/release", officer, body={"reason": "claim settled"})
    assert status == 200
    _advance_to(runtime, _now(runtime) + timedelta(days=1))
    assert _status_of(runtime, f"/v1/vacancies/{held}") == 404
    assert _status_of(runtime, f"/v1/vacancies/{held}/applications/{held_application}") == 404


def test_a_recruiter_of_acme_reaches_no_globex_record(runtime: Api) -> None:
    vacancy, application, person = _id("v-iso"), _id("a-iso"), _id("p-iso")
    _report_vacancy(runtime, vacancy, status="open", opened=_now(runtime) - timedelta(days=1))
    _apply(runtime, vacancy, application, person, {"name": "Iso Person", "email": f"{person}@example.org"})
    globex = runtime.token("globex", "recruiter")
    assert runtime.call("GET", f"/v1/vacancies/{vacancy}", globex)[0] == 404
    assert runtime.call("GET", f"/v1/vacancies/{vacancy}/applications/{application}", globex)[0] == 404
    holds = runtime.call("GET", "/v1/legal-holds?status=all", runtime.token("globex", "compliance_officer"))[1]
    assert all(h["subject_id"] != vacancy for h in holds["holds"])
    assert runtime.call("GET", f"/v1/vacancies/{vacancy}", runtime.token("acme", "recruiter"))[0] == 200


def _run_sweep(runtime: Api, *, dry_run: bool) -> dict[str, Any]:
    """Run the daily sweep now; globex's part of its output (this execution's counts, the report's key)."""
    sfn = runtime.aws("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=_sweep_machine(runtime), name=_id("e2e-sweep"), input=json.dumps({"dry_run": dry_run})
    )
    arn = execution["executionArn"]
    final = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, timeout=120)
    assert final and final["status"] == "SUCCEEDED", (final.get("error"), final.get("cause")) if final else None
    return dict(next(r for r in json.loads(final["output"]) if r["tenant"] == "globex"))


def _stored_report(runtime: Api, key: str) -> dict[str, Any]:
    body = runtime.aws("s3").get_object(Bucket=runtime.resource("StorageAuditExports"), Key=key)["Body"].read()
    return dict(json.loads(body))


def _changes(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {
        phase: {k: n for k, n in actions.items() if n} for phase, actions in counts.items() if any(actions.values())
    }


def test_the_sweep_twice_on_one_day_changes_nothing_and_a_dry_run_reports_the_same_counts(runtime: Api) -> None:
    """Issue 11: 'It is idempotent and resumable: a second run on the same day changes nothing. A dry run reports
    what it would remove and removes nothing.'"""
    _settle_sweeps(runtime)
    token = _integration(runtime, "globex")
    now = _now(runtime)
    vacancies = [_id("v-dry") for _ in range(3)]
    for vacancy in vacancies:  # closed 13 months ago: overdue for archiving under the default policy (12 months)
        status, body = runtime.call(
            "PUT",
            f"/v1/vacancies/{vacancy}",
            token,
            body={
                "status": "closed",
                "opened_at": _iso(now - timedelta(days=500)),
                "closed_at": _iso(now - timedelta(days=400)),
            },
        )
        assert status == 201, body
    # When a dry run goes first: it reports what it would change, and changes nothing
    dry = _run_sweep(runtime, dry_run=True)
    assert dry["dry_run"] is True and _changes(dry["counts"])["archive"]["vacancies"] >= 3, dry
    assert _stored_report(runtime, dry["report"])["counts"] == dry["counts"]  # each execution has its own report
    assert all(runtime.call("GET", f"/v1/vacancies/{v}", token)[1]["status"] == "closed" for v in vacancies)
    # Then the real run changes exactly what the dry run reported, and its report lands in the export bucket
    real = _run_sweep(runtime, dry_run=False)
    assert _changes(real["counts"]) == _changes(dry["counts"])
    assert _stored_report(runtime, real["report"])["counts"] == real["counts"]
    assert all(runtime.call("GET", f"/v1/vacancies/{v}", token)[1]["status"] == "archived" for v in vacancies)
    # And a second run on the same day changes nothing
    again = _run_sweep(runtime, dry_run=False)
    assert _changes(again["counts"]) == {}, again
    assert _stored_report(runtime, again["report"])["counts"] == again["counts"]
