"""The model server: engine command lines, GPU profiles and context sizing, process lifecycle.

`process` (start, stop, status of the engine and the proxy) is used as a module: `from scifi_llm.serving
import process`.
"""

from scifi_llm.exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "engines": [
            "Engine",
            "EngineCommand",
            "ServeOptions",
            "build_command",
            "read_lora",
            "transformers_command",
        ],
        "gpu": [
            "Gpu",
            "GpuProfile",
            "ModelShape",
            "auto_context",
            "detect_gpus",
            "load_model_config",
            "profile_for",
        ],
        "monitor": ["EngineSnapshot", "engine_snapshot", "engine_view", "proxy_snapshot"],
        "process": ["death_reason"],
        "vllm_cli": ["VllmCli", "attention_backend", "installed_vllm"],
    },
)
