"""The book itself: it builds without a warning, and its stored notebooks are clean."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
LOCAL_PATH = re.compile(r"(?<![\w.:/])/(?:home|root|Users|tmp|mnt|work|opt|srv|var)/[\w.-]+/")


def test_every_chapter_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"^\s*- file: (\S+)", toc, flags=re.M))
    assert {f"chapters/{nb.stem}" for nb in NOTEBOOKS} <= listed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_notebook_is_a_clean_full_run(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert path.stat().st_size < 4_000_000, "keep stored outputs lean"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert "google.colab" in first and "NBVAL_SKIP" in first and "remove-cell" in code[0]["metadata"]["tags"]
    for cell in code[1:]:
        assert cell["execution_count"] is not None, "every cell but the Colab one has run"
        # a cell may fail only on purpose: tagged for the book and marked for nbval
        expects_error = ("raises-exception" in cell["metadata"].get("tags", [])
                         and "NBVAL_RAISES_EXCEPTION" in "".join(cell["source"]))
        for output in cell["outputs"]:
            assert output["output_type"] != "error" or expects_error
            text = json.dumps(output)
            assert "Traceback" not in text
            assert not LOCAL_PATH.search(text.replace("\\n", "\n")), LOCAL_PATH.search(text)
            assert "Run mode: quick" not in text, "stored outputs come from a full run"


def test_book_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(ROOT), "--path-output", str(tmp_path), "-W", "-n",
         "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = tmp_path / "_build" / "html"
    chapter = (html / "chapters" / "01_setting.html").read_text()
    assert "colab.research.google.com/github/" in chapter and "/blob/main/chapters/01_setting.ipynb" in chapter
    assert "Sabokrou" in (html / "bibliography.html").read_text()
