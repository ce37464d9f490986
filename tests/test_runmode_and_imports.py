import subprocess
import sys

import pytest

from ganlib import display, metrics, runmode


def test_importing_ganlib_loads_no_framework():
    code = ("import sys, ganlib, ganlib.data, ganlib.protocols, ganlib.metrics, ganlib.plots, ganlib.detector, "
            "ganlib.runmode, ganlib.display, ganlib.porting, ganlib.baselines, ganlib.ema, ganlib.autoencoder, "
            "ganlib.alocc, ganlib.ognet, ganlib.ganomaly, ganlib.egbad; "
            "loaded = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("", False), ("0", False), ("off", False)])
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
    assert markdown.startswith("**`ganlib.metrics.auroc, ganlib.metrics.auprc`**")
    assert "def auroc(y_true, scores) -> float:" in markdown and "```python" in markdown
    with pytest.raises(TypeError):
        display.show_source()
