"""Lambda code and dependency layer, built without Docker.

The layer is installed by `uv pip install --target` with cross-platform flags (`--python-platform
<arch>-manylinux2014 --only-binary :all:`) from the exact versions exported from `uv.lock`, so it is
reproducible; it is cached under `.build/` by the hash of those inputs. Any failure raises, failing the synth.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.constants import BUILD_DIR, CODE_PACKAGES, LAMBDA_PYTHON_VERSION, ROOT

_PLATFORMS = {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}


class BundlingError(RuntimeError):
    pass


def _uv() -> str:
    for candidate in (ROOT / ".tools" / "bin" / "uv", Path(sys.prefix) / "bin" / "uv"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    if not found:
        raise BundlingError("uv is needed to export the layer's requirements: run `make dev` first")
    return found


def _run(cmd: list[str]) -> str:
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundlingError(f"{' '.join(cmd[:3])} ... failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def layer_requirements() -> str:
    """The runtime dependencies (the project's `dependencies`, no groups) at the exact versions of uv.lock."""
    return _run(
        [_uv(), "export", "--frozen", "--no-default-groups", "--no-emit-project", "--no-hashes", "--quiet"]
        # The CDK CLI sets FORCE_COLOR for its child: without this, uv writes ANSI codes into the requirements.
        + ["--format", "requirements-txt", "--color", "never"]
    )


def build_layer(architecture: str) -> Path:
    """A directory with `python/` holding the runtime dependencies for `architecture`, built once per lock."""
    requirements = layer_requirements()
    digest = hashlib.sha256(f"{architecture}|{LAMBDA_PYTHON_VERSION}|{requirements}".encode()).hexdigest()[:16]
    root = BUILD_DIR / "layer"
    target = root / digest
    if (target / ".complete").exists():
        return target
    # Built in a private directory, then renamed: synths running at the same time (tests, `make run`, the CDK
    # CLI) never see, or delete, each other's half-built layer.
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        (staging / "python").mkdir()
        req_file = staging / "requirements.txt"
        req_file.write_text(requirements)
        _run(
            [_uv(), "pip", "install", "--quiet", "--no-compile", "--only-binary", ":all:"]
            + ["--python-platform", _PLATFORMS[architecture], "--python-version", LAMBDA_PYTHON_VERSION]
            + ["--target", str(staging / "python"), "-r", str(req_file)]
        )
        (staging / ".complete").write_text(digest)
        if (target / ".complete").exists():
            return target  # another synth finished the same layer first
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for stale in root.iterdir():
        if stale.name != target.name and not stale.name.startswith(".staging-"):
            shutil.rmtree(stale, ignore_errors=True)  # one layer build kept: the one for the current lock
    return target


def stage_code() -> Path:
    """Copy the function packages (`shared/`, `functions/`) into one code asset directory.

    Staged in a private directory, then renamed to one named by its content hash: synths running at the same
    time (tests, `make run`) never see each other's half-copied tree.
    """
    root = BUILD_DIR / "code"
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        shutil.copytree(ROOT / package, staging / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(staging)).encode() + b"\0" + path.read_bytes())
    target = root / digest.hexdigest()[:16]
    if target.exists():
        shutil.rmtree(staging, ignore_errors=True)
        return target
    for stale in root.iterdir():
        if stale.name != staging.name and not stale.name.startswith(".staging-"):
            shutil.rmtree(stale, ignore_errors=True)  # older code trees: CDK has already copied them to cdk.out
    try:
        staging.rename(target)
    except OSError:  # another synth renamed the same content first
        shutil.rmtree(staging, ignore_errors=True)
    return target
