"""`scifi-llm monitor`: vLLM metrics parsed, the proxy's stats shown, down sources reported as down."""

import json

from scifi_llm.proxy import ProxySettings, create_app
from scifi_llm.serving import EngineSnapshot, engine_view
from scifi_llm.serving.monitor import histogram_quantile, parse_metrics
from servers import ELENA_QUESTION, ask, sdk, serve_in_thread

from conftest import free_port

VLLM_METRICS = """\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 1.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="m"} 0.42
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{model_name="m"} 1000.0
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{model_name="m"} 500.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 50.0
vllm:time_to_first_token_seconds_bucket{le="0.5",model_name="m"} 90.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 100.0
vllm:time_to_first_token_seconds_count{model_name="m"} 100.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 12.0
"""


def test_vllm_metrics_become_gauges_rates_and_ttft_percentiles():
    gauges, counters, buckets = parse_metrics(VLLM_METRICS)
    assert gauges == {"running": 3.0, "waiting": 1.0, "kv_cache_usage": 0.42}
    assert counters == {"prompt_tokens": 1000.0, "generation_tokens": 500.0}
    assert histogram_quantile(buckets, 0.5) == 0.1
    assert abs(histogram_quantile(buckets, 0.7) - 0.3) < 1e-9
    before = EngineSnapshot(
        "u",
        True,
        taken_at=10.0,
        counters={"prompt_tokens": 400.0, "generation_tokens": 300.0},
        has_metrics=True,
    )
    now = EngineSnapshot(
        "u", True, taken_at=12.0, gauges=gauges, counters=counters, ttft_buckets=buckets, has_metrics=True
    )
    view = engine_view(now, before)
    assert view["prompt_tokens_per_s"] == 300.0 and view["generation_tokens_per_s"] == 100.0
    assert view["ttft_p50_ms"] == 100.0


def test_monitor_once_shows_engine_and_proxy(cli, example_workspace, engine, tiny_llama):
    settings = ProxySettings(upstreams=(engine,), index_dir=example_workspace.index_dir)
    with serve_in_thread(create_app(settings), free_port()) as proxy_url:
        ask(sdk(f"{proxy_url}/v1"), ELENA_QUESTION, model=str(tiny_llama))
        result = cli(
            "monitor",
            "--once",
            "--json",
            "--engine-url",
            engine,
            "--proxy-url",
            f"{proxy_url}/v1",
            workspace=example_workspace,
        )
    snapshot = json.loads(result.stdout)
    assert snapshot["engine"]["up"] is True and snapshot["engine"]["metrics"] is False
    assert snapshot["proxy"]["total_queries"] == 1
    assert snapshot["proxy"]["recent_queries"][0]["sources"][0] == "characters/elena_voss.md"
    shown = cli(
        "monitor",
        "--once",
        "--engine-url",
        engine,
        "--proxy-url",
        f"{proxy_url}/v1",
        workspace=example_workspace,
    )
    assert shown.exit_code == 0 and "down" in shown.stdout  # the proxy is gone by now


def test_monitor_reports_down_sources_and_keeps_going(cli, workspace):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    result = cli(
        "monitor", "--once", "--json", "--engine-url", dead, "--proxy-url", dead, workspace=workspace
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "engine": {"url": dead, "up": False, "metrics": False, "ttft_p50_ms": None, "ttft_p95_ms": None},
        "proxy": None,
    }
