#!/usr/bin/env bash
# The end-to-end demo, offline and without a GPU:
#   1. a workspace holding the example world; its lore indexed with the bundled MiniLM;
#   2. writer's questions answered with the lore they need and its sources; the retrieval scorecard;
#   3. a model served (a tiny local Llama built on the spot, or SCIFI_LLM_DEMO_MODEL), the lore proxy in
#      front of it, and a writer's prompt sent through the proxy with the official openai SDK;
#   4. the benchmark suite in --quick mode (throughput, context, creative, coherence, retrieval, pipeline);
#   5. training data prepared from the example prose with that model's tokenizer;
#   6. a LoRA adapter trained on it for a few steps (TRL + PEFT on the CPU), merged into the model shard by
#      shard, compared with the base (perplexity, style distances, side by side), and the merged model served.
# Everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
repo=$PWD
demo=$(mktemp -d)/my-novel
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step scifi-llm init "$demo" --example
cd "$demo"
step scifi-llm lore ingest --embedding-model minilm
step scifi-llm lore ingest
printf '%s\n' \
  "Write the bar scene where Ledger's arm locks up in the cold." \
  "Who is the Magistrate and what does she want from Elena?" \
  "Which of the two Ashgrove sister ships is faster, and why?" > prompts.txt
step scifi-llm lore query --from-file prompts.txt -k 3
step scifi-llm lore eval "$repo/examples/lore_questions.jsonl"

model=${SCIFI_LLM_DEMO_MODEL:-}
if [ -z "$model" ]; then
  model=$demo/tiny-llama
  step python -m scifi_llm.tiny_model "$model"
fi
export SCIFI_LLM_SERVE__PORT=$(free_port) SCIFI_LLM_PROXY__PORT=$(free_port)
export SCIFI_LLM_PROXY__UPSTREAM=http://127.0.0.1:$SCIFI_LLM_SERVE__PORT/v1
proxy_pid=
cleanup() {
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; fi
  scifi-llm stop >/dev/null || true
}
trap cleanup EXIT
step scifi-llm serve "$model"
step scifi-llm status
printf '\n\033[1m$ scifi-llm proxy &\033[0m\n'
scifi-llm proxy --no-history & proxy_pid=$!
python - "$SCIFI_LLM_PROXY__PORT" <<'PY'
import sys, time, urllib.request
for _ in range(240):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit("the proxy did not start")
PY
step python "$repo/examples/ask_with_openai.py" "Write the bar scene where Elena's cybernetic arm locks up in the cold." \
  --url "http://127.0.0.1:$SCIFI_LLM_PROXY__PORT/v1" --max-tokens 40
step scifi-llm ask "What colour is Ledger's arm plating?" --max-tokens 20
[ -z "${SCIFI_LLM_DEMO_MODEL:-}" ] && printf '\nThe benchmarks next run in --quick mode on the tiny model: a pipeline check, not numbers.\n'
step scifi-llm bench all --quick --judge-url "$SCIFI_LLM_PROXY__UPSTREAM" --questions "$repo/examples/lore_questions.jsonl" \
  --tokenizer "$model" --max-model-len 4096
cleanup; proxy_pid=
step scifi-llm tune prepare --tokenizer "$model" --min-tokens 200 --max-tokens 600 --sequence-len 1024
step head -c 700 data/processed/training.jsonl; echo
[ -z "${SCIFI_LLM_DEMO_MODEL:-}" ] && printf '\nThe next steps train the tiny model: they prove the pipeline, not the quality of a voice.\n'
tiny_run=(--set "base_model=$model" --set max_steps=8 --set save_steps=4 --set micro_batch_size=2
  --set gradient_accumulation_steps=1 --set gradient_checkpointing=false --set lora_r=8 --set lora_alpha=16
  --set learning_rate=0.01 --set sequence_len=1024)
step scifi-llm tune train configs/lora_style_transfer.yaml "${tiny_run[@]}"
step scifi-llm tune merge checkpoints/lora-style/adapter --output merged_models/my-style --verify
step scifi-llm tune compare --base "$model" --tuned merged_models/my-style --prompts 2 --max-tokens 40
step scifi-llm serve merged_models/my-style
step python "$repo/examples/ask_with_openai.py" "Write the scene where Elena's arm locks up." \
  --url "http://127.0.0.1:$SCIFI_LLM_SERVE__PORT/v1" --max-tokens 20
cleanup
printf '\nStopped the model server and the proxy. The demo workspace is %s (delete it when done).\n' "$demo"
[ -z "${SCIFI_LLM_DEMO_MODEL:-}" ] && printf 'The tiny model writes nonsense by design; set SCIFI_LLM_DEMO_MODEL to a real model folder.\n'
exit 0
