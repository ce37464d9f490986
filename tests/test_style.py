"""The library's code fits the book's code column: 88 characters, ruff's format.

The chapters show ganlib's functions with ``show_source``, and the book's code
column shows about 88 characters; longer lines scroll sideways.  ruff is one of
the test requirements; its settings are ``[tool.ruff]`` in pyproject.toml.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    # ruff is a test requirement (requirements.txt): missing, the check fails
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_library_lines_fit_88_columns():
    result = ruff(
        "check", "--select", "E501", "--output-format", "concise", "ganlib", "tools"
    )
    assert result.returncode == 0, (
        "lines over 88 characters:\n" + result.stdout + result.stderr
    )


def test_library_is_in_ruff_format():
    result = ruff("format", "--check", "--diff", "ganlib")
    assert result.returncode == 0, (
        "not in ruff's format (python -m ruff format ganlib):\n"
        + result.stdout
        + result.stderr
    )


def chapter_notebooks() -> list[str]:
    return [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "chapters").glob("*.ipynb"))
    ]


def test_chapter_code_fits_88_columns_in_ruff_format():
    notebooks = chapter_notebooks()
    assert notebooks, "no chapter notebooks found"
    lines = ruff("check", "--select", "E501", "--output-format", "concise", *notebooks)
    assert lines.returncode == 0, (
        "chapter code lines over 88 characters:\n" + lines.stdout + lines.stderr
    )
    layout = ruff("format", "--check", "--diff", *notebooks)
    assert layout.returncode == 0, (
        "chapter code not in ruff's format (python -m ruff format chapters):\n"
        + layout.stdout
        + layout.stderr
    )
