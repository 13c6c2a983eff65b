#!/usr/bin/env bash
# The test suite, offline: lint, then pytest (real MiniLM, real LanceDB, a tiny Llama built on the spot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
