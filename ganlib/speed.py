"""Training and scoring throughput of every model in both frameworks, measured alike.

``python -m ganlib.speed`` builds each model's PyTorch and Keras twin with the
same architecture, batch and thread count, and times

- **training**: ``steps`` calls of the framework model's ``train_step`` on one
  fixed batch (the whole optimisation step: every network update the model's
  training step makes, no data loading, no validation);
- **scoring**: :meth:`ganlib.detector.Detector.model_outputs` on
  ``score_samples`` samples in inference mode.

The two frameworks alternate in blocks (torch, keras, torch, keras, ...)
inside one process, so that drift in the machine's speed hits both alike; the
table reports the median over blocks of samples per second.  A warm-up step
before the first block traces Keras' ``tf.function`` and fills PyTorch's
allocator caches.

The sizes are the book's CPU sizes (28x28x1 images with narrow networks, 121
KDD99 features for the tabular models), written in :data:`MODELS`.  The
results, with the hardware, thread count and versions, go to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

#: model name -> (import path, hyper-parameters, sample shape)
MODELS = {
    "autoencoder": ("ganlib.autoencoder:ConvAutoencoder", {}, (28, 28, 1)),
    "alocc": ("ganlib.alocc:ALOCC", {"base_filters": 16}, (28, 28, 1)),
    "ognet": (
        "ganlib.ognet:OGNet",
        {"base_filters": 8, "image_size": None},
        (28, 28, 1),
    ),
    "ganomaly": ("ganlib.ganomaly:GANomaly", {"base_filters": 16}, (28, 28, 1)),
    "egbad": ("ganlib.egbad:EGBAD", {}, (121,)),
    "alad": ("ganlib.alad:ALAD", {}, (121,)),
}


def _detector_class(path: str):
    import importlib

    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _samples(shape: tuple, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32)  # in [0, 1], as images are


def measure(
    model: str,
    framework: str,
    *,
    batch_size: int = 64,
    steps: int = 20,
    score_samples: int = 512,
    threads: int = 1,
    precision: str = "float32",
) -> dict:
    """One block: build the twin, warm up, time ``steps`` training steps and one
    scoring pass."""
    path, hyperparameters, shape = MODELS[model]
    detector = _detector_class(path)(
        framework=framework,
        seed=0,
        verbose=False,
        threads=threads,
        precision=precision,
        **hyperparameters,
    )
    backend = detector.build(shape)
    batch = _samples(shape, batch_size)
    to_score = _samples(shape, score_samples, seed=1)
    with detector.compute_scope():
        backend.train_step(batch)  # warm-up: tracing, allocator
        detector.model_outputs(to_score[:batch_size])
        start = time.perf_counter()
        for _ in range(steps):
            backend.train_step(batch)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        detector.model_outputs(to_score)
        score_seconds = time.perf_counter() - start
    return {
        "train_samples_per_s": steps * batch_size / train_seconds,
        "score_samples_per_s": score_samples / score_seconds,
        "device": backend.device_name,
    }


def speed_table(
    models=tuple(MODELS),
    frameworks=("torch", "keras"),
    precisions=("float32",),
    *,
    blocks: int = 3,
    **options,
):
    """Median samples/s over ``blocks`` alternating blocks, a row per model,
    precision, framework."""
    import pandas as pd
    from tqdm import tqdm

    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown models {unknown}; valid ones are {sorted(MODELS)}")
    runs: dict[tuple, list] = {}
    jobs = [
        (m, p, f)
        for m in models
        for p in precisions
        for _ in range(blocks)
        for f in frameworks
    ]
    for model, precision, framework in tqdm(jobs, desc="speed", unit="block"):
        result = measure(model, framework, precision=precision, **options)
        runs.setdefault((model, precision, framework), []).append(result)
    rows = []
    for (model, precision, framework), results in runs.items():
        train = [r["train_samples_per_s"] for r in results]
        rows.append(
            {
                "model": model,
                "precision": precision,
                "framework": framework,
                "device": results[0]["device"],
                "train samples/s": statistics.median(train),
                "score samples/s": statistics.median(
                    r["score_samples_per_s"] for r in results
                ),
                "train spread %": 100 * (max(train) / min(train) - 1),
            }
        )
    return pd.DataFrame(rows)


def find_results(relative: str, start: Path | None = None) -> Path:
    """``results/<relative>`` of the book's repository, found from ``start`` (the cwd)
    upwards.

    The stored results live in the repository, not in the installed package:
    a chapter opened from a clone finds them; one opened in Colab without the
    repository gets a ``FileNotFoundError`` saying where they are.
    """
    start = Path.cwd() if start is None else Path(start)
    for folder in (start, *start.parents):
        candidate = folder / "results" / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"results/{relative} is stored in the book's repository; clone it and run "
        "the chapter from there to read it"
    )


def stored_table(relative: str = "speed/cpu.json"):
    """A committed run's speed table: ``(DataFrame, record)`` from its JSON file."""
    import pandas as pd

    record = json.loads(find_results(relative).read_text())
    return pd.DataFrame(record["rows"]), record


def _versions() -> dict:
    import sys

    versions = {"python": platform.python_version()}
    for name in ("torch", "tensorflow", "keras", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return versions


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ganlib.speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), choices=list(MODELS)
    )
    parser.add_argument(
        "--frameworks",
        nargs="+",
        default=["torch", "keras"],
        choices=["torch", "keras"],
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--precisions", nargs="+", default=["float32"], choices=["float32", "bfloat16"]
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument(
        "--note", default="", help="e.g. 'quiet machine' or 'contended'"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON file for the results"
    )
    args = parser.parse_args(argv)
    if args.threads < 1 or args.steps < 1 or args.blocks < 1 or args.batch_size < 2:
        parser.error("threads, steps and blocks must be >= 1 and batch-size >= 2")
    # TensorFlow fixes its thread pools when it starts: set them before it is imported
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(min(args.threads, 2)))
    from .runmode import hardware

    start = time.perf_counter()
    table = speed_table(
        args.models,
        args.frameworks,
        args.precisions,
        blocks=args.blocks,
        threads=args.threads,
        batch_size=args.batch_size,
        steps=args.steps,
    )
    record = {
        "hardware": hardware(),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "blocks": args.blocks,
        "note": args.note,
        "versions": _versions(),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "rows": table.round(1).to_dict(orient="records"),
    }
    print(table.round(1).to_string(index=False))
    print(f"{record['hardware']}; {args.threads} thread(s); {record['wall_seconds']} s")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
