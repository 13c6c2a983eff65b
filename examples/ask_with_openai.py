"""Any OpenAI client works with the lore proxy: this is the official `openai` SDK, streaming.

python examples/ask_with_openai.py "Write the bar scene where Elena's arm locks up" [--url http://127.0.0.1:8001/v1]
"""

import argparse

import openai

parser = argparse.ArgumentParser()
parser.add_argument("prompt")
parser.add_argument("--url", default="http://127.0.0.1:8001/v1")
parser.add_argument("--max-tokens", type=int, default=200)
args = parser.parse_args()

client = openai.OpenAI(base_url=args.url, api_key="not-needed-unless-the-proxy-has-one")
model = client.models.list().data[0].id
raw = client.chat.completions.with_raw_response.create(
    model=model,
    stream=True,
    max_tokens=args.max_tokens,
    messages=[
        {"role": "system", "content": "You are a science fiction author."},
        {"role": "user", "content": args.prompt},
    ],
)
for chunk in raw.parse():
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print(f"\n\nlore sources: {raw.headers.get('x-lore-sources') or 'none'}")
