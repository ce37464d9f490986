"""Verified loaders for the book's datasets: MNIST, KDDCup99, ODDS Arrhythmia, CIFAR-10.

Where a file is looked for, in order:

1. ``$GANLIB_DATA/<dataset>/<file>`` (or the ``data_dir`` argument), laid out as
   the project's offline copy is::

       <dir>/mnist/train-images-idx3-ubyte.gz
       <dir>/mnist/train-labels-idx1-ubyte.gz
       <dir>/mnist/t10k-images-idx3-ubyte.gz
       <dir>/mnist/t10k-labels-idx1-ubyte.gz
       <dir>/kddcup99/kddcup.data_10_percent.gz
       <dir>/kddcup99/corrected.gz
       <dir>/kddcup99/kddcup.names
       <dir>/odds/arrhythmia.mat
       <dir>/cifar10/cifar-10-python.tar.gz
2. the per-user cache (``~/.cache/ganlib/<dataset>/<file>`` on Linux);
3. a download from the dataset's official URL (then a byte-identical mirror)
   into that cache, by :mod:`pooch`, which writes to a temporary file and moves
   it into place only once its hash has been checked.

Every file, wherever it was found, is checked against a known hash before a
single byte of it is parsed.  A corrupt or truncated file raises
:class:`DataIntegrityError` naming the expected and the actual hash; the file
is not used and no other copy is silently put in its place.  When a file can
be found nowhere, :class:`DataNotFoundError` names the file, the directories
searched and the URLs tried.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV = "GANLIB_DATA"
"""Environment variable naming the data directory searched first."""


class DataIntegrityError(ValueError):
    """A data file exists but its content is not the expected one."""


class DataNotFoundError(FileNotFoundError):
    """A data file is neither on disk nor downloadable."""


@dataclass(frozen=True)
class RemoteFile:
    """A data file the library knows how to find and verify.

    ``sha256`` is the hash of the file as distributed.  ``gunzipped_md5``, when
    given, is a second accepted identity: the md5 of the *decompressed*
    content.  KDDCup99 needs it, because UCI's gzip wrapper and the wrapper of
    other faithful copies differ while the records inside are identical.
    """

    dataset: str
    name: str
    urls: tuple[str, ...]
    sha256: str
    gunzipped_md5: str | None = None
    size: int | None = None


_MNIST_URLS = (
    "http://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
_KDD_URL = "http://kdd.ics.uci.edu/databases/kddcup99/"

REGISTRY: dict[str, RemoteFile] = {
    f.dataset + "/" + f.name: f
    for f in [
        RemoteFile(
            "mnist",
            "train-images-idx3-ubyte.gz",
            tuple(u + "train-images-idx3-ubyte.gz" for u in _MNIST_URLS),
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            size=9912422,
        ),
        RemoteFile(
            "mnist",
            "train-labels-idx1-ubyte.gz",
            tuple(u + "train-labels-idx1-ubyte.gz" for u in _MNIST_URLS),
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            size=28881,
        ),
        RemoteFile(
            "mnist",
            "t10k-images-idx3-ubyte.gz",
            tuple(u + "t10k-images-idx3-ubyte.gz" for u in _MNIST_URLS),
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            size=1648877,
        ),
        RemoteFile(
            "mnist",
            "t10k-labels-idx1-ubyte.gz",
            tuple(u + "t10k-labels-idx1-ubyte.gz" for u in _MNIST_URLS),
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            size=4542,
        ),
        RemoteFile(
            "kddcup99",
            "kddcup.data_10_percent.gz",
            (_KDD_URL + "kddcup.data_10_percent.gz",),
            "7bfaa8cef1350f72842018c32893e2fa4539d57efbb22f998eb74ecefc3da3b4",
            gunzipped_md5="eb43ac454e61166f88aad7943ef1e079",
        ),
        RemoteFile(
            "kddcup99",
            "corrected.gz",
            (_KDD_URL + "corrected.gz",),
            "74f0daef49b242badc09f2adbd457dea6a45b4f77177efbd11216d333651044b",
            gunzipped_md5="ec403704b5d9a59184adf1099372b160",
        ),
        RemoteFile(
            "kddcup99",
            "kddcup.names",
            (_KDD_URL + "kddcup.names",),
            "24ad45a4c5de85cd73bcc81cf4965a58bbf3e83b48c6e6d3b0284119e7d42efd",
        ),
        # ODDS publishes the file through a file-sharing link; PyOD's repository
        # keeps the same bytes (same sha256) at a stable address.
        RemoteFile(
            "odds",
            "arrhythmia.mat",
            (
                "https://raw.githubusercontent.com/yzhao062/pyod/master/notebooks/data/arrhythmia.mat",
            ),
            "e4d47e499591ae31e5d7f0cd983367092353eac240f48e14c9b36457edb3460d",
            size=105540,
        ),
        RemoteFile(
            "cifar10",
            "cifar-10-python.tar.gz",
            ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            size=170498071,
        ),
    ]
}


# ---------------------------------------------------------- finding and verifying files


def cache_dir() -> Path:
    """The per-user download cache, ``~/.cache/ganlib`` on Linux (the folder
    ``pooch.os_cache`` picks)."""
    # pooch's own dependency; importing pooch itself here would load tqdm.auto
    import platformdirs

    return Path(platformdirs.user_cache_dir("ganlib"))


def _hash_file(path: Path, algorithm: str = "sha256", gunzip: bool = False) -> str:
    digest = hashlib.new(algorithm)
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | os.PathLike, entry: RemoteFile) -> Path:
    """Check ``path`` against ``entry``'s known hash; raise
    :class:`DataIntegrityError` if not.

    Shown in chapters/01_setting.ipynb.
    """
    path = Path(path)
    actual = _hash_file(path)
    if actual == entry.sha256:
        return path
    message = (
        f"{path} is corrupt or incomplete: expected sha256 {entry.sha256}, got {actual}"
    )
    if entry.gunzipped_md5:
        try:
            content_md5 = _hash_file(path, "md5", gunzip=True)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            content_md5 = f"unreadable gzip stream ({error})"
        if content_md5 == entry.gunzipped_md5:
            return path
        message += (
            f"; expected md5 of the decompressed records {entry.gunzipped_md5}, "
            f"got {content_md5}"
        )
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        message += f"; expected {entry.size} bytes, found {size}"
    raise DataIntegrityError(
        message + ". The file was not used: delete it and fetch it again."
    )


def fetch(
    key: str, data_dir: str | os.PathLike | None = None, entry: RemoteFile | None = None
) -> Path:
    """Return the verified local path of registry file ``key`` (e.g.
    ``"mnist/t10k-labels-idx1-ubyte.gz"``).

    ``data_dir`` overrides ``$GANLIB_DATA``.  ``entry`` overrides the registry
    (the tests use it for archives they write themselves).
    """
    entry = entry or REGISTRY[key]
    searched: list[Path] = []
    root = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or None
    for folder in ([Path(root).expanduser() / entry.dataset] if root else []) + [
        cache_dir() / entry.dataset
    ]:
        searched.append(folder)
        if (folder / entry.name).is_file():
            return verify(folder / entry.name, entry)
    return _download(entry, searched)


def _download(entry: RemoteFile, searched: list[Path]) -> Path:
    import pooch

    target = cache_dir() / entry.dataset
    failures = []
    for url in entry.urls:
        try:
            # pooch downloads into a temporary file and moves it into place only
            # after the hash matched, so no partial file is ever left behind.
            path = pooch.retrieve(
                url,
                known_hash=None if entry.gunzipped_md5 else f"sha256:{entry.sha256}",
                fname=entry.name,
                path=target,
                downloader=pooch.HTTPDownloader(progressbar=True, timeout=60),
            )
        except Exception as error:  # network errors, HTTP errors, hash mismatches alike
            failures.append(f"{url}: {type(error).__name__}: {error}")
            continue
        try:
            return verify(path, entry)
        except DataIntegrityError as error:
            Path(path).unlink(missing_ok=True)
            failures.append(f"{url}: {error}")
    where = ", ".join(str(p) for p in searched)
    tried = "\n  ".join(failures)
    raise DataNotFoundError(
        f"Could not find {entry.dataset}/{entry.name}. Searched: {where} "
        f"(set {DATA_ENV} to a directory holding {entry.dataset}/{entry.name}). "
        f"Download failed from:\n  {tried}"
    )


# --------------------------------------------------------------------------- MNIST


def _read_idx(path: Path, magic: int, shape_tail: tuple[int, ...]) -> np.ndarray:
    stat = path.stat()
    return _read_idx_cached(path, stat.st_size, stat.st_mtime_ns, magic, shape_tail)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(
    path: Path, size: int, mtime_ns: int, magic: int, shape_tail: tuple[int, ...]
) -> np.ndarray:
    """Parse a verified IDX file once per process; the array is read-only, so the
    cache cannot be altered."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    header = 4 * (1 + 1 + len(shape_tail))
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataIntegrityError(f"{path}: IDX magic number {found}, expected {magic}")
    count = int.from_bytes(raw[4:8], "big")
    dims = tuple(
        int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "big")
        for i in range(len(shape_tail))
    )
    if dims != shape_tail or len(raw) != header + count * int(
        np.prod(shape_tail, dtype=int)
    ):
        raise DataIntegrityError(
            f"{path}: IDX header says {count} x {dims}, "
            f"file holds {len(raw) - header} bytes"
        )
    array = np.frombuffer(raw, np.uint8, offset=header).reshape((count, *shape_tail))
    array.setflags(write=False)
    return array


def load_mnist(data_dir: str | os.PathLike | None = None):
    """MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Images are ``uint8`` arrays of shape ``(n, 28, 28)``; labels are ``uint8``
    digits.  60000 training and 10000 test images, read from the four official
    IDX gzip files after their sha256 has been checked.
    """
    out = []
    for prefix in ("train", "t10k"):
        images = _read_idx(
            fetch(f"mnist/{prefix}-images-idx3-ubyte.gz", data_dir), 2051, (28, 28)
        )
        labels = _read_idx(
            fetch(f"mnist/{prefix}-labels-idx1-ubyte.gz", data_dir), 2049, ()
        )
        if len(images) != len(labels):
            raise DataIntegrityError(
                f"MNIST {prefix}: {len(images)} images but {len(labels)} labels"
            )
        out.append((images, labels))
    return tuple(out)


# --------------------------------------------------------------------------- KDDCup99


def kddcup99_columns(
    data_dir: str | os.PathLike | None = None,
) -> tuple[list[str], set[str]]:
    """The 41 feature names of ``kddcup.names`` plus ``"label"``, and the set of
    symbolic features."""
    text = fetch("kddcup99/kddcup.names", data_dir).read_text(encoding="ascii")
    names, symbolic = [], set()
    for line in text.splitlines()[1:]:  # the first line lists the attack types
        if ":" not in line:
            continue
        name, kind = (part.strip().rstrip(".") for part in line.split(":", 1))
        names.append(name)
        if kind == "symbolic":
            symbolic.add(name)
    if len(names) != 41:
        raise DataIntegrityError(
            f"kddcup.names lists {len(names)} features, expected 41"
        )
    return names + ["label"], symbolic


def load_kddcup99(subset: str = "10percent", data_dir: str | os.PathLike | None = None):
    """KDDCup99 as a :class:`pandas.DataFrame` with the 41 named features and ``label``.

    ``subset="10percent"`` is the 494021-record training file used by EGBAD and
    ALAD; ``subset="corrected"`` is the 311029-record labelled test set.  Labels
    keep UCI's trailing dot (``"normal."``, ``"smurf."``, ...).
    """
    import pandas as pd

    files = {"10percent": "kddcup.data_10_percent.gz", "corrected": "corrected.gz"}
    if subset not in files:
        raise ValueError(f"subset must be one of {sorted(files)}, got {subset!r}")
    path = fetch(f"kddcup99/{files[subset]}", data_dir)
    columns, _ = kddcup99_columns(data_dir)
    frame = pd.read_csv(path, header=None, names=columns, compression="gzip")
    if frame.shape[1] != 42 or frame.isna().any().any():
        raise DataIntegrityError(
            f"{path}: expected 42 complete comma-separated fields per record"
        )
    return frame


# ---------------------------------------------------------------------- ODDS Arrhythmia


def load_arrhythmia(data_dir: str | os.PathLike | None = None):
    """ODDS Arrhythmia as ``(X, y)``: 452 x 274 float64 features and 0/1 labels
    (1 = outlier, 66 of them)."""
    from scipy.io import loadmat

    path = fetch("odds/arrhythmia.mat", data_dir)
    mat = loadmat(path)
    x, y = (
        np.asarray(mat["X"], dtype=np.float64),
        np.asarray(mat["y"]).ravel().astype(np.int64),
    )
    if x.shape != (452, 274) or y.shape != (452,):
        raise DataIntegrityError(
            f"{path}: expected X 452x274 and y of 452 labels, "
            f"got {x.shape} and {y.shape}"
        )
    return x, y


# --------------------------------------------------------------------------- CIFAR-10


CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds: dicts, lists, bytes and NumPy arrays.

    The archive's hash is checked first; this is a second fence, so that even a
    file that somehow passed cannot run code while it is read.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise DataIntegrityError(
            f"CIFAR-10 batch refers to {module}.{name}, which a data batch never needs"
        )


def load_cifar10(
    data_dir: str | os.PathLike | None = None, *, entry: RemoteFile | None = None
):
    """CIFAR-10 as ``(x_train, y_train), (x_test, y_test)`` from its python archive.

    Images are ``uint8`` arrays of shape ``(n, 32, 32, 3)`` (50000 train, 10000
    test); labels are integers 0-9 naming :data:`CIFAR10_CLASSES`.  The 163 MB
    archive is downloaded once into the cache (a few tens of seconds on Colab).
    Its sha256 is checked before anything in it is unpickled.  ``entry``
    replaces the registry entry, for tests that write small archives.
    """
    path = fetch("cifar10/cifar-10-python.tar.gz", data_dir, entry=entry)
    batches = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            base = os.path.basename(member.name)
            if member.isfile() and (
                base.startswith("data_batch_") or base == "test_batch"
            ):
                batches[base] = _ArrayUnpickler(
                    io.BytesIO(archive.extractfile(member).read()), encoding="bytes"
                ).load()
    expected = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [name for name in expected if name not in batches]
    if missing:
        raise DataIntegrityError(f"{path}: archive lacks {missing}")

    def stack(names):
        data = np.concatenate(
            [np.asarray(batches[n][b"data"], dtype=np.uint8) for n in names]
        )
        labels = np.concatenate(
            [np.asarray(batches[n][b"labels"], dtype=np.int64) for n in names]
        )
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
            raise DataIntegrityError(
                f"{path}: batches must hold rows of 3072 bytes, one label each"
            )
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels

    return stack(expected[:5]), stack(expected[5:])
