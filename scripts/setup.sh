#!/usr/bin/env bash
# Create .venv and install scifi-llm with its test tools. Safe to re-run: it installs again only when
# pyproject.toml changed. torch goes first and pinned: a bare `torch` requirement pulls a multi-GB CUDA
# build, while torch==2.13.0 is the CPU build on machines that have it locally (and a working build elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.scifi-llm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  touch "$stamp"
fi
