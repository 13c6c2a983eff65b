"""Reading and writing safetensors files one tensor at a time.

The safetensors library maps a whole shard into memory to read it and builds a whole file in memory to
write one; merging a 5 GB shard that way holds it three times over. The format is simple (an 8-byte
little-endian header length, a JSON header of dtype, shape and byte offsets, then the raw data), so here
each tensor is read with one `readinto` and written as soon as it is ready: memory stays near the
largest single tensor. Byte order is the machine's, little-endian on every platform torch supports.
"""

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from scifi_llm.errors import UserError

DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}


@dataclass(frozen=True)
class TensorSpec:
    """Where one tensor lives in a safetensors file."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


def read_specs(path: Path) -> tuple[list[TensorSpec], int]:
    """The tensors of a file in storage order, and where their data starts."""
    with path.open("rb") as handle:
        raw_length = handle.read(8)
        if len(raw_length) < 8:
            raise UserError(f"{path}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", raw_length)
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise UserError(f"{path}: the safetensors header is not valid JSON (a damaged file?)") from exc
    specs = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in DTYPES:
            raise UserError(f"{path}: {name} has dtype {entry['dtype']}, which this merge does not handle")
        begin, end = entry["data_offsets"]
        specs.append(TensorSpec(name, DTYPES[entry["dtype"]], tuple(entry["shape"]), begin, end))
    return sorted(specs, key=lambda spec: spec.begin), 8 + length


def iter_tensors(path: Path) -> Iterator[tuple[TensorSpec, torch.Tensor]]:
    """Each tensor of a file, read from disk when asked for."""
    specs, data_start = read_specs(path)
    with path.open("rb") as handle:
        for spec in specs:
            handle.seek(data_start + spec.begin)
            buffer = bytearray(spec.end - spec.begin)
            if handle.readinto(buffer) != len(buffer):
                raise UserError(f"{path}: the data of {spec.name} is cut short (a damaged or partial file)")
            flat = torch.frombuffer(buffer, dtype=spec.dtype) if buffer else torch.empty(0, dtype=spec.dtype)
            yield spec, flat.reshape(spec.shape)


def write_streamed(
    path: Path, layout: list[tuple[str, torch.dtype, tuple[int, ...]]], tensors: Iterator[torch.Tensor]
) -> None:
    """Write a safetensors file whose tensors (name, dtype, shape in `layout`, in that order) arrive one
    at a time from `tensors`; each must match its layout entry."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape in layout:
        size = _numel(shape) * torch.empty(0, dtype=dtype).element_size()
        header[name] = {"dtype": NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        for (name, dtype, shape), tensor in zip(layout, tensors, strict=True):
            if tensor.dtype != dtype or tuple(tensor.shape) != tuple(shape):
                raise ValueError(
                    f"{name}: got {tensor.dtype} {tuple(tensor.shape)}, expected {dtype} {shape}"
                )
            handle.write(
                tensor.contiguous().reshape(-1).view(torch.uint8).numpy().data if tensor.numel() else b""
            )


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count
