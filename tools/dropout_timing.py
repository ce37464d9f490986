"""ganlib's CPU dropout mask against ``nn.Dropout``'s, forward and backward.

:class:`ganlib.backend_torch.Dropout` draws uniform numbers and compares them
with ``p`` where PyTorch's CPU kernel draws one Bernoulli variable per
element.  This times both on the shapes of the book's tabular discriminators
(batch 64; 128 and 1,024 features), one thread, alternating in blocks so that
the machine's drift hits both alike, and writes the median microseconds per
forward + backward pass to ``results/speed/dropout.json`` with the hardware.

    python tools/dropout_timing.py --blocks 5 --repeats 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from ganlib.backend_torch import Dropout
from ganlib.runmode import hardware

RATE = 0.2  # EGBAD's and ALAD's discriminators


def microseconds(layer: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Mean microseconds of one forward and backward pass through ``layer``."""
    start = time.perf_counter()
    for _ in range(repeats):
        layer(x).sum().backward()
    return 1e6 * (time.perf_counter() - start) / repeats


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--note", default="", help="e.g. 'quiet machine'")
    parser.add_argument("--out", default="results/speed/dropout.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers = {"nn.Dropout": nn.Dropout(RATE), "ganlib Dropout": Dropout(RATE)}
    rows = []
    for features in (128, 1024):
        x = torch.randn(64, features, requires_grad=True)
        times = {name: [] for name in layers}
        for _ in range(args.blocks):
            for name, layer in layers.items():
                times[name].append(microseconds(layer.train(), x, args.repeats))
        row = {"shape": [64, features]}
        row.update({name: statistics.median(t) for name, t in times.items()})
        rows.append(row)
        print(", ".join(f"{k}: {v}" for k, v in row.items()))
    result = {
        "rows": rows,
        "unit": "microseconds per forward + backward pass (median over blocks)",
        "rate": RATE,
        "threads": 1,
        "blocks": args.blocks,
        "repeats": args.repeats,
        "hardware": hardware(),
        "torch": torch.__version__,
        "note": args.note,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
