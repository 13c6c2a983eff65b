"""Running a training config elsewhere: `axolotl train` with the same file, or our trainer on several GPUs
through `accelerate launch`."""

import shlex
import shutil
from pathlib import Path

from scifi_llm.errors import UserError
from scifi_llm.tune.train_config import TrainConfig


def axolotl_command(config_path: Path, overrides: list[str] = ()) -> list[str]:
    """`axolotl train CONFIG --key=value ...`, or a clear error when Axolotl is not installed."""
    if shutil.which("axolotl") is None:
        raise UserError(
            "Axolotl is not installed: pip install axolotl (see docs.axolotl.ai for CUDA builds), "
            "or train with the default --engine trl"
        )
    return ["axolotl", "train", str(config_path), *(f"--{override}" for override in overrides)]


def accelerate_command(
    config: TrainConfig, config_path: Path, gpus: int, resume: bool, overrides: list[str]
) -> list[str]:
    """The same `tune train` run on several GPUs through `accelerate launch` (data parallel; DeepSpeed or
    FSDP when the config names them)."""
    command = ["accelerate", "launch", "--num_processes", str(gpus)]
    if config.deepspeed:
        command += ["--use_deepspeed", "--deepspeed_config_file", config.deepspeed]
    elif config.fsdp:
        command += ["--use_fsdp"]
    else:
        command += ["--multi_gpu"]
    command += ["-m", "scifi_llm", "tune", "train", str(config_path)]
    command += ["--resume"] if resume else []
    for override in overrides:
        command += ["--set", override]
    return command


def shell_line(command: list[str]) -> str:
    """A command as one copy-pasteable shell line."""
    return shlex.join(command)
