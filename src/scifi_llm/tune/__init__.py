"""Fine-tuning on the writer's prose: prepare the data, train an adapter, merge it, compare the result."""

from scifi_llm.exports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "prepare": ["PrepareOptions", "PrepareReport", "prepare_data"],
        "train_config": ["TrainConfig", "load_train_config"],
        "train": ["TrainRun", "train_adapter"],
        "runs": ["checkpoint_path"],
        "axolotl": ["accelerate_command", "axolotl_command", "shell_line"],
        "merge": ["MergeReport", "merge_adapter", "verify_merge"],
        "compare": ["CompareOptions", "compare_models", "metric_rows"],
        "dataset": ["load_examples"],
        "corpus": ["read_writing"],
    },
)
