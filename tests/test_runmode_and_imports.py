import subprocess
import sys

import pytest

from ganlib import display, metrics, runmode


def test_importing_ganlib_loads_no_framework():
    code = (
        "import sys, ganlib, ganlib.data, ganlib.protocols, ganlib.metrics, ganlib.plots, ganlib.detector, "
        "ganlib.runmode, ganlib.display, ganlib.porting, ganlib.baselines, ganlib.ema, ganlib.autoencoder, "
        "ganlib.alocc, ganlib.ognet, ganlib.ganomaly, ganlib.egbad; "
        "loaded = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "value, quick",
    [("1", True), ("true", True), ("", False), ("0", False), ("off", False)],
)
def test_quick_mode_switch(monkeypatch, value, quick):
    monkeypatch.setenv(runmode.QUICK_ENV, value)
    assert runmode.is_quick() is quick
    assert runmode.iterations(full=20, quick=2) == (2 if quick else 20)
    assert runmode.mode_name() in runmode.report()


def test_quick_mode_rejects_unclear_values(monkeypatch):
    monkeypatch.setenv(runmode.QUICK_ENV, "maybe")
    with pytest.raises(ValueError, match="GANLIB_QUICK"):
        runmode.is_quick()
    monkeypatch.delenv(runmode.QUICK_ENV)
    with pytest.raises(ValueError, match="positive integer"):
        runmode.iterations(full=0)


def test_show_source_renders_markdown_with_the_real_source():
    block = display.show_source(metrics.auroc, metrics.auprc)
    markdown = block._repr_markdown_()
    title = "ganlib.metrics.auroc, ganlib.metrics.auprc"
    assert markdown.startswith(f"<details open>\n<summary><code>{title}</code> (")
    assert "def auroc(y_true, scores) -> float:" in markdown
    # the fence is Markdown between blank lines, inside the HTML element
    assert "</summary>\n\n```python\n" in markdown
    assert markdown.endswith("\n```\n\n</details>")
    assert repr(block) == f"# {title}\n{block.source}"
    with pytest.raises(TypeError):
        display.show_source()


def test_show_source_folds_long_blocks_unless_told():
    short = display.show_source(metrics.auroc)
    assert short.lines <= display.FOLD_OVER and not short.folded
    long = display.show_source(display)  # the whole module
    assert long.lines > display.FOLD_OVER and long.folded
    assert long._repr_markdown_().startswith("<details>\n")
    assert (
        display.show_source(display, folded=False)
        ._repr_markdown_()
        .startswith("<details open>")
    )
    assert display.show_source(metrics.auroc, folded=True).folded
    # the title is escaped for the HTML summary
    assert "&lt;b&gt;" in display.SourceBlock("x = 1", "<b>")._repr_markdown_()
