#!/usr/bin/env bash
# The test command: lint, types, the import contract, then the whole suite (kernel tests
# included).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy bot checks config state
.venv/bin/lint-imports --no-cache  # the layering contract (pyproject.toml)
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
