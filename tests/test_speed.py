"""The speed table measures what it says, for every model, and refuses unknown names."""

import json

import pytest

from ganlib import speed


def test_speed_table_times_each_model_and_framework():
    table = speed.speed_table(
        ("autoencoder", "egbad"),
        ("torch", "keras"),
        blocks=1,
        steps=1,
        batch_size=8,
        score_samples=16,
        threads=1,
    )
    assert len(table) == 4
    assert set(table["framework"]) == {"torch", "keras"}
    assert (table["train samples/s"] > 0).all() and (table["score samples/s"] > 0).all()


def test_speed_command_writes_its_record(tmp_path):
    out = tmp_path / "speed.json"
    speed.main(
        [
            "--models",
            "autoencoder",
            "--frameworks",
            "torch",
            "--steps",
            "1",
            "--blocks",
            "1",
            "--batch-size",
            "8",
            "--output",
            str(out),
        ]
    )
    record = json.loads(out.read_text())
    assert record["threads"] == 1 and record["rows"][0]["model"] == "autoencoder"
    assert "CPU" in record["hardware"]


def test_unknown_models_are_named():
    with pytest.raises(ValueError, match="unknown models \\['vae'\\]"):
        speed.speed_table(("vae",))
