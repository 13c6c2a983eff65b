#!/usr/bin/env bash
# Create .venv and install scifi-llm with its test tools. Safe to re-run: it installs again only when
# pyproject.toml changed. torch goes first and pinned: a bare `torch` requirement pulls a multi-GB CUDA
# build, while torch==2.13.0 is the CPU build on machines that have it locally (and a working build elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.scifi-llm-installed

install() {  # quiet unless it fails; the full log stays in .venv/pip.log
  if ! .venv/bin/python -m pip install "$@" >> .venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    echo "setup failed: pip install $* (full log: .venv/pip.log)" >&2
    exit 1
  fi
}

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setting up .venv (first run takes a few minutes)..." >&2
  install --upgrade pip
  install "torch==2.13.0"
  install -e ".[dev,train]"
  touch "$stamp"
fi
