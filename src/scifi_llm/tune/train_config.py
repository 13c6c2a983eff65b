"""The training config of `tune train`: Axolotl's YAML schema, read strictly.

Our configs are Axolotl configs, so a writer who outgrows `scifi-llm tune train` can hand the same file
to `axolotl train`. We read the subset that LoRA/QLoRA style transfer needs and refuse any other key by
name, rather than silently training with a setting we do not honour. A run keeps the config it ran with,
`--set` changes included, in its folder (`save_resolved`).
"""

import difflib
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_write_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetSpec(_Strict):
    """One `datasets:` entry: a JSONL file of `{"messages": [...]}` lines, trained on assistant turns."""

    path: str
    ds_type: Literal["json"] = "json"
    type: Literal["chat_template"] = "chat_template"
    field_messages: Literal["messages"] = "messages"
    roles_to_train: list[Literal["assistant"]] = ["assistant"]
    split: str | None = None


class BnbConfig(_Strict):
    """4-bit quantisation of the base (QLoRA): NF4 with double quantisation."""

    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True


class TrainConfig(_Strict):
    """A LoRA/QLoRA supervised fine-tuning run, in Axolotl's key names."""

    base_model: str
    adapter: Literal["lora", "qlora"]
    load_in_4bit: bool = False
    load_in_8bit: Literal[False] = False
    bnb_config_kwargs: BnbConfig = BnbConfig()
    strict: bool = False
    chat_template: Literal["tokenizer_default", "llama3"] = "tokenizer_default"

    lora_r: int = Field(64, ge=1)
    lora_alpha: float = Field(128, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_linear: bool = True
    lora_target_modules: list[str] | None = None
    peft_use_rslora: bool = False
    peft_use_dora: bool = False

    datasets: list[DatasetSpec] = Field(min_length=1)
    test_datasets: list[DatasetSpec] = []
    dataset_prepared_path: str | None = None
    train_on_inputs: Literal[False] = False
    sequence_len: int = Field(2048, ge=16)
    sample_packing: bool = False
    eval_sample_packing: bool = False
    pad_to_sequence_len: bool = False

    output_dir: str
    num_epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, ge=1)
    micro_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(4, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    optimizer: Literal["adamw_torch", "adamw_torch_fused", "paged_adamw_8bit", "adamw_bnb_8bit"] = (
        "adamw_torch"
    )
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 42

    bf16: bool | Literal["auto"] = "auto"
    fp16: bool = False
    tf32: bool = False
    gradient_checkpointing: bool = False
    attn_implementation: Literal["flash_attention_2", "sdpa", "eager"] | None = None
    flash_attention: bool = False  # Axolotl's older spelling of attn_implementation: flash_attention_2
    sdp_attention: bool = False

    logging_steps: int = Field(1, ge=1)
    eval_steps: int | None = Field(None, ge=1)
    save_steps: int | None = Field(None, ge=1)
    save_total_limit: int | None = Field(None, ge=1)

    plugins: list[Literal["axolotl.integrations.liger.LigerPlugin"]] = []
    liger_rope: bool = False
    liger_rms_norm: bool = False
    liger_glu_activation: bool = False
    liger_fused_linear_cross_entropy: bool = False

    deepspeed: str | None = None
    fsdp: list[str] | None = None
    fsdp_config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if (self.adapter == "qlora") != self.load_in_4bit:
            raise ValueError("adapter: qlora goes with load_in_4bit: true (and lora with false)")
        if not self.lora_target_linear and not self.lora_target_modules:
            raise ValueError("set lora_target_linear: true or list lora_target_modules")
        return self

    @property
    def attention(self) -> str:
        """The attention implementation asked for (Axolotl's new key, or its older flags)."""
        if self.attn_implementation:
            return self.attn_implementation
        return "flash_attention_2" if self.flash_attention else "sdpa"

    @property
    def liger(self) -> bool:
        """Whether the config asks for Liger kernels."""
        kernels = (
            self.liger_rms_norm,
            self.liger_glu_activation,
            self.liger_rope,
            self.liger_fused_linear_cross_entropy,
        )
        return bool(self.plugins) and any(kernels)


def load_train_config(path: Path, overrides: list[str] = ()) -> TrainConfig:
    """Read and validate a training config; `overrides` are `key=value` (YAML values) applied on top."""
    if not path.is_file():
        raise UserError(f"training config {path} does not exist (the shipped ones are in configs/)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of settings")
    for override in overrides:
        key, separator, value = override.partition("=")
        if not separator or not key.strip():
            raise UserError(f"--set {override!r}: write key=value, e.g. --set learning_rate=1e-4")
        try:
            raw[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UserError(
                f"--set {override!r}: the value is not valid YAML ({str(exc).splitlines()[0]})"
            ) from exc
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = str(problem["loc"][0]) if problem["loc"] else ""
        given = next((o for o in overrides if o.partition("=")[0].strip() == key), None)
        origin = f"--set {given!r}" if given else str(path)  # blame the file only for what is in the file
        raise UserError(f"{origin}: {_describe(problem)}") from exc


RESOLVED_NAME = "config.yaml"
_LIBRARIES = ("scifi-llm", "torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes")


def save_resolved(config: TrainConfig, run_dir: Path) -> Path:
    """The config as the run used it (`--set` changes applied, defaults written out) into the run folder,
    headed by the versions of the libraries that ran it; `tune train` reads it back as it is."""
    header = [f"# resolved by `scifi-llm tune train` on {datetime.now(UTC).isoformat(timespec='seconds')}"]
    header += [f"# {name} {_version(name)}" for name in _LIBRARIES]
    body = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    path = run_dir / RESOLVED_NAME
    atomic_write_text(path, "\n".join(header) + "\n" + body)
    return path


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _describe(problem: dict) -> str:
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "extra_forbidden":
        close = difflib.get_close_matches(where, TrainConfig.model_fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (remove it, or use --engine axolotl)"
        return f"unknown key {where!r}: scifi-llm does not train with it{hint}"
    return f"{where}: {problem['msg']}" if where else problem["msg"]
