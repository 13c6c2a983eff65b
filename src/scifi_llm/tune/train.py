"""`tune train`: a LoRA/QLoRA adapter on the writer's prose with TRL's SFTTrainer and PEFT.

Reads top to bottom: `setup` (data, model, adapter, trainer), `train` (resuming from the last checkpoint
when asked, with the same data order), `save` (the adapter, written atomically). Each example is trained
as prompt (system + request) and completion (the writer's passage), so the loss falls on the author's
prose only, whatever the base model's chat template. Loss, learning rate and throughput go to
`<output_dir>/log.jsonl`, one line per logging step.
"""

import contextlib
import importlib.util
import json
import os
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from datasets import Dataset, disable_progress_bars
from peft import LoraConfig
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import SFTConfig, SFTTrainer

from scifi_llm.errors import UserError
from scifi_llm.fsutil import atomic_dir, atomic_write_text
from scifi_llm.models import require
from scifi_llm.tokens import load_tokenizer
from scifi_llm.tune.dataset import load_examples
from scifi_llm.tune.runs import ADAPTER_FOLDER, BEST_NAME
from scifi_llm.tune.train_config import TrainConfig, save_resolved

LOG_NAME = "log.jsonl"
Progress = Callable[[int, int, dict], None]  # (step, total steps, latest numbers)


@dataclass
class TrainRun:
    """What a training run did."""

    run_dir: str
    adapter_dir: str
    steps: int
    resumed_from: str | None
    first_loss: float | None
    last_loss: float | None
    eval_loss: float | None
    tokens_per_second: float | None
    peak_vram_gb: float | None
    device: str
    notes: list[str] = field(default_factory=list)
    best_checkpoint: str | None = None  # the checkpoint with the lowest validation loss (RUN:best)
    best_eval_loss: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def train_adapter(
    config: TrainConfig, root: Path, resume: bool = False, progress: Progress | None = None
) -> TrainRun:
    """Train the adapter the config describes; paths in it are relative to the workspace `root`."""
    run_dir = root / config.output_dir
    checkpoint = _resume_point(run_dir, resume)
    notes: list[str] = []
    if _main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        save_resolved(config, run_dir)
    try:
        with _libraries_quiet():
            trainer = setup(config, root, run_dir, notes, progress)
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except torch.OutOfMemoryError as exc:
        raise UserError(
            "out of GPU memory: lower micro_batch_size (e.g. --set micro_batch_size=2) and raise "
            "gradient_accumulation_steps to keep the effective batch, or lower lora_r (e.g. 32)"
        ) from exc
    return save(trainer, run_dir, checkpoint, notes)


@contextmanager
def _libraries_quiet():
    """No deprecation notices and no weight-loading bars from the libraries: a writer cannot act on them,
    and reads them as breakage. What matters is said at the end of the run (`notes`)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def setup(config: TrainConfig, root: Path, run_dir: Path, notes: list[str], progress: Progress | None):
    """The SFTTrainer for this config: data, base model (4-bit for QLoRA), LoRA adapter, arguments."""
    cuda = torch.cuda.is_available()
    if config.load_in_4bit and not cuda:
        raise UserError(
            "QLoRA (load_in_4bit) needs a CUDA GPU for bitsandbytes; on this machine train with "
            "configs/lora_style_transfer.yaml (LoRA in full precision)"
        )
    tokenizer = load_tokenizer(config.base_model, "base_model", root)
    train_examples = [example for spec in config.datasets for example in load_examples(root / spec.path)]
    _check_lengths(tokenizer, train_examples, config.sequence_len)
    eval_examples = _eval_examples([root / spec.path for spec in config.test_datasets], notes)
    attention = _attention(config, cuda)
    arguments = _arguments(config, run_dir, cuda, attention, evaluate=bool(eval_examples), notes=notes)
    trainer = SFTTrainer(
        model=_base_model(config, root, arguments.bf16, attention),
        args=arguments,
        train_dataset=_dataset(train_examples),
        eval_dataset=_dataset(eval_examples) if eval_examples else None,
        processing_class=tokenizer,
        peft_config=_lora(config),
        callbacks=[_Log(run_dir / LOG_NAME, progress)],
    )
    trainer.remove_callback(PrinterCallback)  # our log and progress bar say it once, in our words
    return trainer


def _arguments(
    config: TrainConfig, run_dir: Path, cuda: bool, attention: str, evaluate: bool, notes: list[str]
) -> SFTConfig:
    """TRL's arguments from the config: precision, packing and Liger where this machine allows them."""
    bf16 = cuda and torch.cuda.is_bf16_supported() if config.bf16 == "auto" else config.bf16
    packing = config.sample_packing and attention == "flash_attention_2"
    if config.sample_packing and not packing:
        notes.append("sample_packing needs flash attention (flash-attn on CUDA): batches are padded instead")
    liger = config.liger and cuda and importlib.util.find_spec("liger_kernel") is not None
    if config.liger and not liger:
        notes.append("Liger kernels asked for but not available here (CUDA and liger-kernel): not used")
    return SFTConfig(
        output_dir=str(run_dir),
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.micro_batch_size,
        per_device_eval_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        optim=config.optimizer,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        data_seed=config.seed,
        max_length=config.sequence_len,
        packing=packing,
        padding_free=packing,
        completion_only_loss=True,
        bf16=bf16,
        fp16=config.fp16 and cuda,
        tf32=config.tf32 and cuda,
        activation_checkpointing=config.gradient_checkpointing,
        use_liger_kernel=liger,
        use_cpu=not cuda,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if evaluate else "no",
        metric_for_best_model="eval_loss" if evaluate else None,  # the best checkpoint outlives rotation
        greater_is_better=False,
        eval_steps=config.eval_steps or config.save_steps or 50,
        save_strategy="steps",
        save_steps=config.save_steps or 50,
        save_total_limit=config.save_total_limit,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        dataset_num_proc=1,
    )


def _lora(config: TrainConfig) -> LoraConfig:
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear" if config.lora_target_linear else config.lora_target_modules,
        use_rslora=config.peft_use_rslora,
        use_dora=config.peft_use_dora,
        task_type="CAUSAL_LM",
    )


def _check_lengths(tokenizer, examples: list[dict], sequence_len: int) -> None:
    """Refuse examples the trainer would cut: the writer's prose must arrive whole."""
    lengths = [
        len(
            tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True)[
                "input_ids"
            ]
        )
        for example in examples
    ]
    longer = [length for length in lengths if length > sequence_len]
    if longer:
        raise UserError(
            f"{len(longer)} training examples are longer than sequence_len {sequence_len} (the longest "
            f"{max(longer)} tokens) and would be cut: run `scifi-llm tune prepare --sequence-len "
            f"{sequence_len}`, or raise sequence_len"
        )


def _eval_examples(paths: list[Path], notes: list[str]) -> list[dict]:
    """The validation examples; an empty validation file (a small corpus) means no evaluation, said."""
    if paths and all(path.is_file() and not path.read_text(encoding="utf-8").strip() for path in paths):
        notes.append("validation.jsonl is empty (a small corpus): trained without evaluation")
        return []
    return [example for path in paths for example in load_examples(path)]


def save(trainer, run_dir: Path, checkpoint: Path | None, notes: list[str]) -> TrainRun:
    """Write the final adapter to `<run>/adapter` (through a temporary folder) and sum up the run."""
    adapter_dir = run_dir / ADAPTER_FOLDER
    staging = run_dir / f".{ADAPTER_FOLDER}.partial"
    main = trainer.is_world_process_zero()  # with several GPUs, one process writes
    writing = atomic_dir(adapter_dir, staging, replace=True) if main else contextlib.nullcontext(staging)
    with writing as folder:
        trainer.save_model(str(folder))  # every process takes part; only the main one writes
    trainer.accelerator.wait_for_everyone()
    entries = read_log(run_dir / LOG_NAME)
    losses = [entry["loss"] for entry in entries if "loss" in entry]
    evals = [entry["eval_loss"] for entry in entries if "eval_loss" in entry]
    speeds = [entry["tokens_per_second"] for entry in entries if entry.get("tokens_per_second")]
    cuda = torch.cuda.is_available()
    best = _record_best(trainer, run_dir) if main else None
    return TrainRun(
        run_dir=str(run_dir),
        adapter_dir=str(adapter_dir),
        steps=trainer.state.global_step,
        resumed_from=str(checkpoint) if checkpoint else None,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        eval_loss=evals[-1] if evals else None,
        tokens_per_second=round(sum(speeds) / len(speeds), 1) if speeds else None,
        peak_vram_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        device=torch.cuda.get_device_name(0) if cuda else "cpu",
        notes=notes,
        best_checkpoint=best and str(run_dir / best["checkpoint"]),
        best_eval_loss=best and best["eval_loss"],
    )


def _record_best(trainer, run_dir: Path) -> dict | None:
    """Write `<run>/best.json`: the checkpoint with the lowest validation loss, which rotation keeps."""
    state = trainer.state
    if not state.best_model_checkpoint or not Path(state.best_model_checkpoint).is_dir():
        return None
    best = {"checkpoint": Path(state.best_model_checkpoint).name, "step": state.best_global_step,
            "eval_loss": round(float(state.best_metric), 6)}  # fmt: skip
    atomic_write_text(run_dir / BEST_NAME, json.dumps(best, indent=1) + "\n")  # for RUN:best
    return best


def read_log(path: Path) -> list[dict]:
    """The run's log entries, oldest first (a line torn by a crash mid-write is left out)."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder of a run: the trainer writes its state file last, so a
    checkpoint cut short by a crash has none (or a broken one) and is passed over."""
    complete = [
        path for path in run_dir.glob("checkpoint-*") if _step(path) is not None and _readable_state(path)
    ]
    return max(complete, key=_step, default=None)


def _step(checkpoint: Path) -> int | None:
    number = checkpoint.name.removeprefix("checkpoint-")
    return int(number) if number.isdigit() else None


def _readable_state(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _resume_point(run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to continue from; the log is cut back to it, so the loss curve continues."""
    checkpoint = last_checkpoint(run_dir)
    if not resume:
        if checkpoint is not None:
            raise UserError(
                f"{run_dir} already has {checkpoint.name}: pass --resume to continue it, or set another "
                "output_dir (e.g. --set output_dir=checkpoints/run-2)"
            )
        if _main_process():
            (run_dir / LOG_NAME).unlink(missing_ok=True)
        return None
    if checkpoint is None:
        raise UserError(f"nothing to resume in {run_dir}: no checkpoint-N folder with its trainer state")
    if _main_process():
        kept = [entry for entry in read_log(run_dir / LOG_NAME) if entry["step"] <= _step(checkpoint)]
        atomic_write_text(run_dir / LOG_NAME, "".join(json.dumps(entry) + "\n" for entry in kept))
    return checkpoint


def _main_process() -> bool:
    """True except in the secondary processes of a multi-GPU launch (torchrun and accelerate set RANK)."""
    return os.environ.get("RANK", "0") == "0"


def _dataset(examples: list[dict]) -> Dataset:
    disable_progress_bars()  # one bar for the run, not one per preprocessing pass
    return Dataset.from_list(examples)


def _base_model(config: TrainConfig, root: Path, bf16: bool, attention: str):

    options: dict = {"dtype": torch.bfloat16 if bf16 else torch.float32, "attn_implementation": attention}
    if config.load_in_4bit:
        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=config.bnb_config_kwargs.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=config.bnb_config_kwargs.bnb_4bit_use_double_quant,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    name = str(require(config.base_model, "base_model", root))
    try:
        return AutoModelForCausalLM.from_pretrained(name, **options)
    except (OSError, ValueError) as exc:
        if "bitsandbytes" in str(exc):
            raise UserError("QLoRA needs bitsandbytes: pip install 'scifi-llm[train]' bitsandbytes") from exc
        raise UserError(_missing_model(name)) from exc


def _missing_model(name: str) -> str:
    return f"base model {name} could not be loaded: is it a complete model folder?"


def _attention(config: TrainConfig, cuda: bool) -> str:
    """flash_attention_2 where asked and installed on CUDA (it allows packing); else PyTorch's SDPA."""
    wanted = config.attention
    if wanted == "flash_attention_2" and not (cuda and importlib.util.find_spec("flash_attn") is not None):
        return "sdpa"
    return wanted


class _Log(TrainerCallback):
    """Appends each logging step to log.jsonl (with tokens/s) and reports progress."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self.path = path
        self.progress = progress
        self._last = (time.monotonic(), 0)
        self._latest: dict = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        now, tokens = time.monotonic(), state.num_input_tokens_seen
        entry = {"step": state.global_step, "epoch": round(state.epoch or 0, 4)}
        entry |= {key: value for key, value in (logs or {}).items() if isinstance(value, int | float)}
        if "loss" in entry and tokens > self._last[1] and now > self._last[0]:
            entry["tokens_per_second"] = round((tokens - self._last[1]) / (now - self._last[0]), 1)
            self._last = (now, tokens)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        self._latest |= entry

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = (time.monotonic(), state.num_input_tokens_seen)

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None and state.is_world_process_zero:
            self.progress(state.global_step, state.max_steps, self._latest)
