#!/usr/bin/env bash
# The end-to-end demo, offline and without a GPU: a workspace holding the example world, its lore indexed
# with the bundled MiniLM, three writer's questions answered with the lore they need and its sources,
# and the retrieval scorecard on the example questions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
questions=$PWD/examples/lore_questions.jsonl
demo=$(mktemp -d)/my-novel
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step scifi-llm init "$demo" --example
cd "$demo"
step scifi-llm lore ingest --embedding-model minilm
step scifi-llm lore ingest
printf '%s\n' \
  "Write the bar scene where Ledger's arm locks up in the cold." \
  "Who is the Magistrate and what does she want from Elena?" \
  "Which of the two Ashgrove sister ships is faster, and why?" > "$demo/prompts.txt"
step scifi-llm lore query --from-file prompts.txt -k 3
step scifi-llm lore eval "$questions"
step scifi-llm lore status
printf '\nThe demo workspace is %s (delete it when done).\n' "$demo"
