"""Reading files whatever their encoding, and refusing binaries."""

import pytest

from scifi_llm.textio import NotText, read_text


def test_utf8_with_bom_and_crlf(tmp_path):
    path = tmp_path / "a.md"
    path.write_bytes("\ufeffÉlan — “quoted”\r\nnext\r".encode())
    decoded = read_text(path)
    assert decoded.text == "Élan — “quoted”\nnext\n"
    assert decoded.encoding == "utf-8-sig" and not decoded.used_fallback


def test_cp1252_fallback_is_flagged(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("Caf\u00e9 \u2014 na\u00efve".encode("cp1252"))
    decoded = read_text(path)
    assert decoded.text == "Café — naïve"
    assert decoded.used_fallback and decoded.encoding == "cp1252"


def test_binary_files_are_refused(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(NotText):
        read_text(path)
