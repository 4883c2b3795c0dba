"""The CDK app: `python -m infra.app` (what `make synth` and `cdk.json` run) writes cdk.out/."""

from __future__ import annotations

import json
import os
import tomllib

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.constants import ROOT
from infra.stack import AtsComplianceStack


def _context_from_cdk_json() -> dict:
    # The CDK CLI passes cdk.json's context in CDK_CONTEXT_JSON; run directly, read it ourselves.
    return json.loads((ROOT / "cdk.json").read_text()).get("context", {})


def build_app(outdir: str | None = None) -> App:
    """The app with its one stack, checked by cdk-nag's AwsSolutions pack."""
    context = {} if "CDK_CONTEXT_JSON" in os.environ else _context_from_cdk_json()
    app = App(outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"), context=context)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    AtsComplianceStack(
        app,
        str(app.node.try_get_context("ats:stackName") or "AtsCompliance"),
        architecture=str(app.node.try_get_context("ats:lambdaArchitecture") or "arm64"),
        service_version=version,
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
        description="ATS tracking and compliance backend",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
