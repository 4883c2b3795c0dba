"""The CDK app: `python -m infra.app` (what `make synth` and `cdk.json` run) writes cdk.out/.

The stage comes from the context (`cdk synth -c stage=prod`, default dev); the stack is
`<ats:stackName>-<stage>`, so a dev and a prod stack live side by side.
"""

from __future__ import annotations

import json
import os
import tomllib

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra import constants
from infra.constants import ROOT
from infra.constructs.stage import StageConfig
from infra.stack import AtsComplianceStack


def _context_from_cdk_json() -> dict:
    # The CDK CLI passes cdk.json's context (and every -c) in CDK_CONTEXT_JSON; run directly, read it ourselves.
    context: dict = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
    return context


def stack_name(base: str, stage: StageConfig) -> str:
    return f"{base}-{stage.name}"


def build_app(outdir: str | None = None, *, stage: str | None = None) -> App:
    """The app with its one stack for `stage` (else the context's `stage`, else dev), checked by cdk-nag."""
    context = {} if "CDK_CONTEXT_JSON" in os.environ else _context_from_cdk_json()
    if stage is not None:
        context["stage"] = stage
    app = App(outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"), context=context)
    config = StageConfig(str(app.node.try_get_context("stage") or constants.DEFAULT_STAGE))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    AtsComplianceStack(
        app,
        stack_name(str(app.node.try_get_context("ats:stackName") or "AtsCompliance"), config),
        stage=config,
        architecture=str(app.node.try_get_context("ats:lambdaArchitecture") or "arm64"),
        service_version=version,
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
        description=f"ATS tracking and compliance backend ({config.name})",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
