import numpy as np
import pytest

from ganlib import protocols


@pytest.fixture(scope="session")
def mnist_digit1():
    """MNIST one-class-normal split with digit 1 normal, subsampled to keep CI fast."""
    split = protocols.one_class_normal(1, seed=0)
    rng = np.random.default_rng(0)
    test = rng.choice(len(split.y_test), 2000, replace=False)
    return split.x_train[:2000], split.x_test[test], split.y_test[test]


def _kdd_subsample(split):
    rng = np.random.default_rng(0)
    val = rng.choice(len(split.y_val), 4000, replace=False)
    test = rng.choice(len(split.y_test), 8000, replace=False)
    return (
        split.x_train[:20000],
        split.x_val[val],
        split.y_val[val],
        split.x_test[test],
        split.y_test[test],
    )


@pytest.fixture(scope="session")
def kdd():
    """The KDD99 protocol (seed 0, raw features as the official code), subsampled:
    20000 training rows, 4000 validation and 8000 test rows."""
    return _kdd_subsample(protocols.kdd99(seed=0))


@pytest.fixture(scope="session")
def kdd_scaled():
    """The same rows, min-max scaled (``protocols.kdd99(scale=True)``)."""
    return _kdd_subsample(protocols.kdd99(seed=0, scale=True))


@pytest.fixture
def one_torch_thread():
    """Small networks on a shared CPU run fastest, and reproducibly, on one PyTorch thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_files():
    """Verified paths of the real data files (all but CIFAR-10), found before any test isolates the loaders."""
    from ganlib import data

    return {
        key: data.fetch(key) for key in data.REGISTRY if not key.startswith("cifar10/")
    }


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """An empty data directory and an empty download cache, with every download pointed at a closed port."""
    from ganlib import data

    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    monkeypatch.setenv(data.DATA_ENV, str(data_dir))
    monkeypatch.setattr(data, "cache_dir", lambda: cache)
    closed = {k: _offline(e) for k, e in data.REGISTRY.items()}
    monkeypatch.setattr(data, "REGISTRY", closed)
    return data_dir


def _offline(entry):
    from dataclasses import replace

    return replace(
        entry, urls=tuple(f"http://127.0.0.1:9/{entry.name}" for _ in entry.urls)
    )
