"""Every function behind an API route can write the audit trail, so the resolver's stand-in entry
(shared/http.py `audit_unaudited`) and the routes' own entries always have somewhere to go."""

from __future__ import annotations

from tests.infra.conftest import Synth, as_list, ref_target, refs_in

# Routes that touch no personal data and take anonymous callers: nothing to audit, nobody to attribute it to.
NO_PERSONAL_DATA = ("/v1/health/GET",)


def _audit_table(synth: Synth) -> str:
    (table,) = [k for k in synth.of_type("AWS::DynamoDB::Table") if "AuditTable" in k]
    return table


def test_every_api_function_has_the_audit_table_and_may_insert_into_it(synth: Synth) -> None:
    audit = _audit_table(synth)
    functions = set(synth.our_functions())
    api_functions = {
        fn
        for k, m in synth.of_type("AWS::ApiGateway::Method").items()
        if m["Properties"]["HttpMethod"] != "OPTIONS" and not any(f"{r}/" in synth.paths[k] for r in NO_PERSONAL_DATA)
        for fn in refs_in(m["Properties"].get("Integration", {}).get("Uri"))
        if fn in functions
    }
    assert len(api_functions) >= 10
    for fn in sorted(api_functions):
        env = synth.props(fn)["Environment"]["Variables"]
        assert ref_target(env.get("AUDIT_TABLE_NAME")) == audit, fn
        role = ref_target(synth.props(fn)["Role"])
        inserts = [
            s
            for p in synth.of_type("AWS::IAM::Policy").values()
            if role in refs_in(p["Properties"]["Roles"])
            for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])
            if "dynamodb:PutItem" in as_list(s["Action"]) and audit in refs_in(s["Resource"])
        ]
        assert inserts, f"{fn} cannot insert into the audit trail"
