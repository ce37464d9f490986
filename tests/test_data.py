import gzip
import hashlib
import io
import pickle
import tarfile
from dataclasses import replace

import numpy as np
import pytest

from ganlib import data

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_counts_match_the_data_readme():
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and x_train.max() == 255
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS


def test_kddcup99_has_494021_rows_121_features_and_20_percent_anomalies():
    from ganlib.protocols import encode_kdd99

    frame = data.load_kddcup99()
    assert frame.shape == (494021, 42)
    x, y, names = encode_kdd99(frame)
    assert x.shape == (494021, 121) and len(names) == 121
    assert 0.19 < y.mean() < 0.21
    assert y.sum() == 97278  # the "normal." records


def test_kddcup99_corrected_test_set():
    assert data.load_kddcup99("corrected").shape == (311029, 42)
    with pytest.raises(ValueError, match="subset must be one of"):
        data.load_kddcup99("full")


def test_arrhythmia_shape_and_outliers():
    x, y = data.load_arrhythmia()
    assert x.shape == (452, 274) and y.sum() == 66


def _copy_truncated(key, data_dir, real_files):
    source = real_files[key]
    entry = data.REGISTRY[key]
    (data_dir / entry.dataset).mkdir(parents=True, exist_ok=True)
    target = data_dir / entry.dataset / entry.name
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target, entry


def test_truncated_mnist_file_gives_the_hash_error_and_no_arrays(
    tmp_path, monkeypatch, real_files
):
    real = {k: p for k, p in real_files.items() if k.startswith("mnist/")}
    data_dir = tmp_path / "data"
    (data_dir / "mnist").mkdir(parents=True)
    for key, path in real.items():
        (data_dir / key).write_bytes(path.read_bytes())
    target, entry = _copy_truncated(
        "mnist/train-images-idx3-ubyte.gz", data_dir, real_files
    )
    monkeypatch.setenv(data.DATA_ENV, str(data_dir))
    result = None
    with pytest.raises(data.DataIntegrityError) as error:
        result = data.load_mnist()
    assert result is None
    message = str(error.value)
    assert entry.sha256 in message
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    assert actual in message and str(target) in message


def test_corrupt_local_file_is_not_replaced_by_a_download(
    real_files, isolated_data, monkeypatch
):
    _copy_truncated("odds/arrhythmia.mat", isolated_data, real_files)
    called = []
    monkeypatch.setattr(data, "_download", lambda *a: called.append(a))
    with pytest.raises(data.DataIntegrityError, match="expected sha256"):
        data.load_arrhythmia()
    assert not called


def test_kdd_accepts_another_gzip_wrapper_of_the_same_records(
    real_files, isolated_data
):
    records = gzip.open(real_files["kddcup99/corrected.gz"]).read()
    (isolated_data / "kddcup99").mkdir()
    rewrapped = isolated_data / "kddcup99" / "corrected.gz"
    rewrapped.write_bytes(gzip.compress(records, compresslevel=1, mtime=0))
    assert data.fetch("kddcup99/corrected.gz") == rewrapped


def test_kdd_with_other_records_is_rejected(isolated_data):
    (isolated_data / "kddcup99").mkdir()
    (isolated_data / "kddcup99" / "corrected.gz").write_bytes(
        gzip.compress(b"0,tcp,http,SF\n")
    )
    with pytest.raises(data.DataIntegrityError, match="decompressed records"):
        data.fetch("kddcup99/corrected.gz")


def test_missing_file_error_names_file_directories_and_url(isolated_data):
    with pytest.raises(data.DataNotFoundError) as error:
        data.load_arrhythmia()
    message = str(error.value)
    assert "odds/arrhythmia.mat" in message
    assert str(isolated_data / "odds") in message
    assert "http://127.0.0.1:9/arrhythmia.mat" in message


# --------------------------------------------------------------------------- CIFAR-10 on archives written here


def _cifar_archive(path, per_batch=4):
    """A small archive in the official python format: five data batches, a test batch, batches.meta."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as archive:

        def add(name, obj):
            payload = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))

        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            add(
                name,
                {
                    b"batch_label": name.encode(),
                    b"labels": rng.integers(0, 10, per_batch).tolist(),
                    b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                    b"filenames": [b"x.png"] * per_batch,
                },
            )
        add(
            "batches.meta", {b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]}
        )
    return path


def _entry_for(path):
    entry = data.REGISTRY["cifar10/cifar-10-python.tar.gz"]
    return replace(
        entry,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size=None,
        urls=("http://127.0.0.1:9/cifar-10-python.tar.gz",),
    )


def test_cifar10_loader_reads_the_official_format(isolated_data):
    (isolated_data / "cifar10").mkdir()
    path = _cifar_archive(isolated_data / "cifar10" / "cifar-10-python.tar.gz")
    (x_train, y_train), (x_test, y_test) = data.load_cifar10(entry=_entry_for(path))
    assert x_train.shape == (20, 32, 32, 3) and x_test.shape == (4, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.shape == (20,)
    # channel-first rows of 3072 bytes become channels-last images: red plane first
    with tarfile.open(path) as archive:
        first = pickle.loads(
            archive.extractfile("cifar-10-batches-py/data_batch_1").read(),
            encoding="bytes",
        )
    assert np.array_equal(x_train[0, :, :, 0].ravel(), first[b"data"][0, :1024])
    assert np.array_equal(x_train[0, :, :, 2].ravel(), first[b"data"][0, 2048:])


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_cifar10_archive_with_wrong_hash_is_never_unpickled(
    isolated_data, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    (isolated_data / "cifar10").mkdir()
    path = isolated_data / "cifar10" / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        payload = pickle.dumps(_Payload())
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    with pytest.raises(data.DataIntegrityError, match="expected sha256"):
        data.load_cifar10()
    assert not (tmp_path / "PWNED").exists()
    # even with a matching hash, the restricted unpickler refuses to call os.system
    with pytest.raises(data.DataIntegrityError, match="never needs"):
        data.load_cifar10(entry=_entry_for(path))
    assert not (tmp_path / "PWNED").exists()


def test_cifar10_archive_missing_batches_is_rejected(isolated_data):
    (isolated_data / "cifar10").mkdir()
    path = isolated_data / "cifar10" / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(data.DataIntegrityError, match="lacks"):
        data.load_cifar10(entry=_entry_for(path))
