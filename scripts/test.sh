#!/usr/bin/env bash
# The test command: lint, types, then the whole suite (kernel tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy bot checks config state
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
