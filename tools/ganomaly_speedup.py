"""GANomaly's PyTorch training step against a straightforward implementation of it.

Issue #13 asks how much faster ganlib's PyTorch GANomaly trains than a
plain PyTorch implementation of the *same* networks, losses and update order,
written the way the official code (``lib/model.py``) is: D evaluated three
times a step (on x and x_hat for G's feature-matching loss, then on a
detached x_hat for its own loss), default (per-tensor) Adam, NCHW memory,
one backward pass into every network's gradients.  ganlib's
:class:`ganlib.ganomaly.torch_model.GANomalyTorch` runs D twice from one
forward pass, takes each loss's gradient for its own networks only, uses the
fused Adam and channels-last weights.

Both run at the official size (32x32x1 images, 64 base filters, latent 100,
batch 64) on random images, alternating in blocks in one process so that the
machine's drift hits both alike; the median over blocks of training samples
per second is reported for each thread count, and written to
``results/speed/ganomaly-reference.json`` with the hardware.

    python tools/ganomaly_speedup.py --threads 1 2 --blocks 5 --steps 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ganlib.ganomaly import GANomaly, training_losses
from ganlib.ganomaly.torch_model import Discriminator, build_decoder, build_encoder
from ganlib.runmode import hardware

SHAPE = (32, 32, 1)  # the official MNIST size (isize 32)


class StraightforwardGANomaly:
    """The official update order, written plainly: three D passes a step."""

    def __init__(self, hp: dict, seed: int = 0):
        torch.manual_seed(seed)
        size, channels = SHAPE[0], SHAPE[2]
        filters, latent = hp["base_filters"], hp["latent_dim"]
        self.hp = hp
        self.generator_encoder = build_encoder(channels, size, filters, latent)
        self.decoder = build_decoder(channels, size, filters, latent)
        self.encoder = build_encoder(channels, size, filters, latent)
        self.discriminator = Discriminator(channels, size, filters)
        generator = [self.generator_encoder, self.decoder, self.encoder]
        settings = {"lr": hp["learning_rate"], "betas": (hp["beta_1"], hp["beta_2"])}
        self.optimizer_g = torch.optim.Adam(
            [p for net in generator for p in net.parameters()], **settings
        )
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), **settings)

    def train_step(self, batch: np.ndarray) -> None:
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous() * 2 - 1
        z = self.generator_encoder(x)
        x_hat = self.decoder(z)
        z_hat = self.encoder(x_hat)
        # G: feature matching on D(x) and D(x_hat), contextual and encoder losses
        d_real, d_fake = self.discriminator(x), self.discriminator(x_hat)
        losses = training_losses(x, x_hat, z, z_hat, d_real, d_fake, self.hp, torch)
        self.optimizer_g.zero_grad()
        losses["g_loss"].backward(retain_graph=True)
        self.optimizer_g.step()
        # D: real x against the detached x_hat, a third pass through D
        logit_real, logit_fake = d_real[1], self.discriminator(x_hat.detach())[1]
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        d_loss = 0.5 * (
            bce(logit_real, torch.ones_like(logit_real))
            + bce(logit_fake, torch.zeros_like(logit_fake))
        )
        self.optimizer_d.zero_grad()
        d_loss.backward()
        self.optimizer_d.step()


def ganlib_step(precision: str = "float32", seed: int = 0):
    """ganlib's PyTorch step at the official sizes, in ``precision``."""
    detector = GANomaly(
        framework="torch", seed=seed, verbose=False, threads=None, precision=precision
    )
    backend = detector.build(SHAPE)

    def step(batch):
        with detector.compute_scope():  # autocast when precision="bfloat16"
            return backend.train_step(batch)

    return step


def time_block(step, batch: np.ndarray, steps: int) -> float:
    """Training samples per second over ``steps`` steps (after one warm-up step)."""
    step(batch)
    start = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return steps * len(batch) / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--note", default="")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    hp = dict(GANomaly.defaults)  # the official sizes: 64 base filters, latent 100
    rng = np.random.default_rng(0)
    batch = rng.random((args.batch_size, *SHAPE), dtype=np.float32)
    rows, start = [], time.perf_counter()
    before = torch.get_num_threads()
    for threads in args.threads:
        torch.set_num_threads(threads)
        steps = {
            "ganlib": ganlib_step(),
            "straightforward": StraightforwardGANomaly(hp).train_step,
            "ganlib bfloat16": ganlib_step("bfloat16"),
        }
        runs = {name: [] for name in steps}
        for _ in range(args.blocks):
            for name, step in steps.items():
                runs[name].append(time_block(step, batch, args.steps))
        medians = {name: statistics.median(r) for name, r in runs.items()}
        rows.append(
            {
                "threads": threads,
                "ganlib samples/s": round(medians["ganlib"], 1),
                "straightforward samples/s": round(medians["straightforward"], 1),
                "ganlib bfloat16 samples/s": round(medians["ganlib bfloat16"], 1),
                "speed-up": round(medians["ganlib"] / medians["straightforward"], 2),
                "speed-up bfloat16": round(
                    medians["ganlib bfloat16"] / medians["straightforward"], 2
                ),
                "blocks": {k: [round(v, 1) for v in r] for k, r in runs.items()},
            }
        )
        print(
            f"{threads} thread(s): ganlib {medians['ganlib']:.1f}, straightforward "
            f"{medians['straightforward']:.1f} samples/s, "
            f"x{rows[-1]['speed-up']:.2f}; bfloat16 {medians['ganlib bfloat16']:.1f}, "
            f"x{rows[-1]['speed-up bfloat16']:.2f}"
        )
    torch.set_num_threads(before)
    record = {
        "hardware": hardware(),
        "torch": torch.__version__,
        "shape": list(SHAPE),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "blocks": args.blocks,
        "note": args.note,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
