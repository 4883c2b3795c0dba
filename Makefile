# Every target here is a command from the README. Each creates the virtual environment it needs.
SHELL := /bin/bash
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# Node 20 passed its end of life (2026-04-30) and jsii says so on every synth; the versions it supports are 22 and 24
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
PY ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV_PY := .venv/bin/python
PORT ?= 3000

.PHONY: dev run test unit integration infra-test e2e lint format synth openapi bench clean

$(UV):
	$(PY) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --quiet --python $(PY)
	touch $@

dev: .venv/.synced

lint: dev
	$(VENV_PY) -m ruff check functions shared infra tests benchmarks
	$(VENV_PY) -m ruff format --check functions shared infra tests benchmarks
	$(VENV_PY) -m mypy functions shared infra tests benchmarks
	.venv/bin/lint-imports

format: dev
	$(VENV_PY) -m ruff check --fix functions shared infra tests benchmarks
	$(VENV_PY) -m ruff format functions shared infra tests benchmarks

synth: dev
	$(VENV_PY) -m infra.app

openapi: synth
	$(VENV_PY) -m infra.openapi --template-dir cdk.out --out docs/openapi.json

unit: dev
	$(VENV_PY) -m pytest tests/unit -q

integration: dev
	$(VENV_PY) -m pytest tests/integration -q

infra-test: dev
	$(VENV_PY) -m pytest tests/infra -q

e2e: dev
	$(VENV_PY) -m pytest tests/e2e -q

test: lint
	$(VENV_PY) -m pytest tests -q

run: synth
	$(VENV_PY) -m infra.local --port $(PORT)

bench: dev
	$(VENV_PY) -m benchmarks.cold_start
	$(VENV_PY) -m benchmarks.retention
	$(VENV_PY) -m benchmarks.messages
	$(VENV_PY) -m benchmarks.audit_verify
	$(VENV_PY) -m benchmarks.audit
	$(VENV_PY) -m benchmarks.audit_chain
	$(VENV_PY) -m benchmarks.messages_export

clean:
	rm -rf .venv .tools cdk.out .build .local
