"""The acceptance run of `scifi-llm tune prepare`, through the scripts in tests/acceptance/."""

import subprocess
import sys
from pathlib import Path

ACCEPTANCE = Path(__file__).resolve().parent / "acceptance"


def test_prepare_passes_the_acceptance_check_on_a_messy_folder(tiny_llama: Path, tmp_path: Path):
    """The issue's acceptance run: a messy folder the code was not written against, checked from the outside.

    make_messy.py writes a writer's folder of original prose (notes, odd encodings, duplicates, files to
    skip) plus a manifest; check.py runs the installed `scifi-llm tune prepare` on it twice and checks
    the outputs against the manifest only.
    """
    messy = tmp_path / "messy"
    made = subprocess.run(
        [sys.executable, str(ACCEPTANCE / "make_messy.py"), str(messy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, f"make_messy.py failed:\n{made.stdout}\n{made.stderr}"

    checked = subprocess.run(
        [
            sys.executable,
            str(ACCEPTANCE / "check.py"),
            str(messy),
            "--tokenizer",
            str(tiny_llama),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert checked.returncode == 0, f"check.py failed:\n{checked.stdout}\n{checked.stderr}"
