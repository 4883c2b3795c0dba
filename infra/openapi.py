"""One OpenAPI document for the whole API, merged from the resolvers of the functions behind the routes that
the synthesised template defines. `python -m infra.openapi --out docs/openapi.json` writes it."""

from __future__ import annotations

import argparse
import importlib
import json
import tomllib
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

from infra.constants import ROOT
from infra.local.template import Assembly, load
from shared.http import BEARER_AUTH

TITLE = "ATS tracking and compliance API"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER_AUTH: HTTPBearer(bearerFormat="JWT", description="Cognito ID token (custom:tenant, cognito:groups)")
}


class OpenApiMismatch(RuntimeError):
    pass


def build_openapi(assembly: Assembly, server_url: str | None = None) -> dict[str, Any]:
    """Merge the resolvers' schemas; fail if a template route is undocumented or a documented one unrouted."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    merge = OpenAPIMerge(
        title=TITLE,
        version=version,
        description="Tracks candidate messages, workflow failures, retention and assets for ATS integrations.",
        servers=[Server(url=server_url or "/")],
        security_schemes=SECURITY_SCHEMES,
        on_conflict="error",
    )
    routed = {(r.method.lower(), r.path) for r in assembly.routes}
    modules = sorted({assembly.functions[r.function].handler.rpartition(".")[0] for r in assembly.routes})
    documented: set[tuple[str, str]] = set()
    components: dict[str, tuple[str, Any]] = {}  # schema name -> (module, schema): two different ones would merge
    for module_name in modules:
        resolver = importlib.import_module(module_name).app
        schema = resolver.get_openapi_schema(title=TITLE, version=version, security_schemes=SECURITY_SCHEMES)
        schema_dict = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
        for path, operations in schema_dict.get("paths", {}).items():
            documented.update((method, path) for method in operations)
        for name, component in schema_dict.get("components", {}).get("schemas", {}).items():
            first = components.setdefault(name, (module_name, component))
            if first[1] != component:
                raise OpenApiMismatch(
                    f"two different schemas named {name} ({first[0]}, {module_name}): the merged document would "
                    "keep one of them; rename one of the models"
                )
        merge.add_schema(schema_dict)
    if routed != documented:
        raise OpenApiMismatch(
            f"routes without documentation: {sorted(routed - documented)}; "
            f"documented but not routed: {sorted(documented - routed)}"
        )
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--template-dir", default=str(ROOT / "cdk.out"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "openapi.json"))
    args = parser.parse_args()
    document = build_openapi(load(Path(args.template_dir)))
    Path(args.out).write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    print(f"wrote {args.out}: {len(document.get('paths', {}))} paths")


if __name__ == "__main__":
    main()
