"""The architecture as a test: the import-linter contracts in pyproject.toml hold on the code, and each one
breaks when the import it forbids is added (run on a copy of the tree, so the repository is untouched)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = {
    c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}

# One forbidden import per contract: (module to add, its source, the contract it must break).
VIOLATIONS = [
    ("shared/_violation.py", "import functions.platform.logic.health\n", "shared imports neither functions nor infra"),
    ("shared/_violation.py", "import infra.constants\n", "shared imports neither functions nor infra"),
    ("functions/platform/_violation.py", "import infra.constants\n", "functions never import infra"),
    (
        "functions/otherdomain/logic/_violation.py",
        "import functions.platform.logic.health\n",
        "domains do not import each other",
    ),
    (
        "functions/platform/dal/_violation.py",
        "import functions.platform.logic.health\n",
        "inside a domain, handlers over logic over dal",
    ),
    (
        "functions/platform/logic/_violation.py",
        "import functions.platform.handlers.health\n",
        "inside a domain, handlers over logic over dal",
    ),
    ("functions/platform/logic/_violation.py", "import shared.http\n", "logic never imports the HTTP edge"),
]


def _copy_tree(tmp_path: Path) -> Path:
    for package in ("shared", "functions", "infra"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _broken(output: str) -> set[str]:
    return {line.removesuffix(" BROKEN").strip() for line in output.splitlines() if line.endswith(" BROKEN")}


def test_every_contract_named_here_exists() -> None:
    assert {name for _, _, name in VIOLATIONS} == CONTRACTS


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" KEPT") == len(CONTRACTS)


@pytest.mark.parametrize(("module", "source", "contract"), VIOLATIONS)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, source: str, contract: str) -> None:
    tree = _copy_tree(tmp_path)
    path = tree / module
    for parent in reversed(path.relative_to(tree).parents[:-1]):
        (tree / parent).mkdir(exist_ok=True)
        (tree / parent / "__init__.py").touch()
    path.write_text(source)

    result = _lint(tree)

    assert result.returncode != 0
    assert contract in _broken(result.stdout), result.stdout
