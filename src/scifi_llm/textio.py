"""Reading a writer's text files as they are: odd encodings, byte-order marks, binaries in disguise."""

from dataclasses import dataclass
from pathlib import Path

# A writer's notes to self, not text to learn from or to show a model: in prose and in lore alike.
DEFAULT_NOTE_PATTERNS = (r"^\s*(?:TODO|FIXME|XXX|NOTE TO SELF)\b",)
_SNIFF_BYTES = 8192
_FALLBACK_ENCODINGS = ("cp1252", "latin-1")


class NotText(Exception):
    """The file is binary, not text; the message says why."""


@dataclass(frozen=True)
class TextFile:
    """A decoded text file: its text (newlines normalised to \\n) and the encoding that worked."""

    text: str
    encoding: str

    @property
    def used_fallback(self) -> bool:
        """True when the file was not valid UTF-8 and a legacy encoding was used instead."""
        return self.encoding not in ("utf-8", "utf-8-sig")


def looks_binary(raw: bytes) -> bool:
    """True when the first bytes hold a NUL or mostly control characters, as binaries do."""
    head = raw[:_SNIFF_BYTES]
    if b"\x00" in head:
        return True
    controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 12, 13))
    return bool(head) and controls / len(head) > 0.05


def read_text(path: Path) -> TextFile:
    """Decode `path` as UTF-8 (BOM stripped), else cp1252, else Latin-1; raise NotText for binaries."""
    raw = path.read_bytes()
    if looks_binary(raw):
        raise NotText("binary file (not text)")
    for encoding in ("utf-8-sig", *_FALLBACK_ENCODINGS):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        used = "utf-8" if encoding == "utf-8-sig" and not raw.startswith(b"\xef\xbb\xbf") else encoding
        return TextFile(text.replace("\r\n", "\n").replace("\r", "\n"), used)
    raise AssertionError("latin-1 decodes any bytes")
