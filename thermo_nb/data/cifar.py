"""CIFAR-10 from a local copy in the "python version" format (never downloaded).

The format is the one distributed as ``cifar-10-python.tar.gz`` and read by
``torchvision.datasets.CIFAR10``: a folder ``cifar-10-batches-py`` with the pickled
batches ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, each a dict with
``b"data"`` (uint8, ``(n, 3072)``, channel-major 32x32 RGB) and ``b"labels"`` (ints).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..runtime import resolve_device
from .images import TensorSplits

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
"""Channel means used by the free-energy paper's code (for CIFAR-10 and CIFAR-100)."""
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
"""Channel standard deviations used by the free-energy paper's code."""


def find_cifar10_folder(data_root) -> Path:
    """The folder holding CIFAR-10's python batches under ``data_root`` (itself or its
    ``cifar-10-batches-py``), checked without reading them: the test run at parameter
    validation, before any compute, and by :func:`load_cifar10`.

    Raises
    ------
    FileNotFoundError
        Naming the folder and the expected files; nothing is downloaded.
    """
    if data_root is None:
        raise FileNotFoundError(
            "CIFAR-10 needs data_root: a folder holding 'cifar-10-batches-py' (the "
            "python version of CIFAR-10); nothing is downloaded"
        )
    root = Path(data_root).expanduser()
    for cand in (root / CIFAR10_DIR, root):
        if all((cand / f).is_file() for f in CIFAR10_TRAIN + (CIFAR10_TEST,)):
            return cand
    raise FileNotFoundError(
        f"CIFAR-10 not found under data_root={str(data_root)!r}: expected "
        f"{CIFAR10_DIR}/{{{', '.join(CIFAR10_TRAIN)}, {CIFAR10_TEST}}} (the python "
        "pickle batches of cifar-10-python.tar.gz, unpacked); nothing is downloaded"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 batch (no 'data'/'labels' keys)")
    x = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
    y = np.asarray(labels, dtype=np.int64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{path}: {x.shape[0]} images but {y.shape[0]} labels")
    return x, y


def load_cifar10(
    data_root,
    device=None,
    dtype=torch.float32,
    samples_per_label: "int | None" = None,
    data_seed: int = 1,
    normalise: bool = True,
) -> TensorSplits:
    """CIFAR-10 as tensors ``(N, 3, 32, 32)`` from a local folder.

    Parameters
    ----------
    data_root : str or path
        Folder that holds ``cifar-10-batches-py`` (or that folder itself).
    device : {"auto", "cpu", "cuda"}, torch.device or None
    dtype : torch floating dtype of the images
    samples_per_label : int, optional
        Keep this many training images per class (the papers' dataset-size experiment:
        500 / 1250 / 2500; 5000 = all), chosen with ``data_seed``.
    data_seed : int
        Seed of the subset (the papers: 1).
    normalise : bool
        Scale to [0, 1], then subtract :data:`CIFAR10_MEAN` and divide by
        :data:`CIFAR10_STD` per channel (the papers' normalisation; no augmentation).

    Returns
    -------
    TensorSplits
        ``x_train (N, 3, 32, 32)``, ``y_train (N,)``, ``x_test``, ``y_test``.

    Raises
    ------
    FileNotFoundError
        When ``data_root`` is None or lacks the batches (the message says what is
        expected; nothing is ever downloaded).

    Notes
    -----
    Reads the pickles with ``encoding="bytes"`` as the CIFAR-10 web page describes.
    """
    folder = find_cifar10_folder(data_root)
    parts = [_read_batch(folder / f) for f in CIFAR10_TRAIN]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_batch(folder / CIFAR10_TEST)
    if samples_per_label is not None:
        if isinstance(samples_per_label, bool) or int(samples_per_label) < 1:
            raise ValueError(
                f"samples_per_label must be an int >= 1, got {samples_per_label!r}"
            )
        rng = np.random.default_rng(data_seed)
        keep = []
        for c in np.unique(y_tr):
            idx = np.flatnonzero(y_tr == c)
            keep.append(rng.permutation(idx)[: int(samples_per_label)])
        keep = np.sort(np.concatenate(keep))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    dev = resolve_device(device)

    def to_x(a):
        t = torch.as_tensor(a, dtype=dtype, device=dev) / 255.0
        if normalise:
            mean = torch.tensor(CIFAR10_MEAN, dtype=dtype, device=dev)[:, None, None]
            std = torch.tensor(CIFAR10_STD, dtype=dtype, device=dev)[:, None, None]
            t = (t - mean) / std
        return t

    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64, device=dev)  # noqa: E731
    return TensorSplits(to_x(x_tr), as_y(y_tr), to_x(x_te), as_y(y_te))


def write_fake_cifar10(
    root, n_per_batch: int = 20, n_test: int = 20, seed: int = 0
) -> Path:
    """Write a tiny random data set in the CIFAR-10 python format (for tests).

    Parameters
    ----------
    root : path
        Where ``cifar-10-batches-py`` is created.
    n_per_batch, n_test : int
        Images per training batch (5 batches) and in the test batch.
    seed : int

    Returns
    -------
    Path
        ``root`` (pass it as ``data_root``).

    Notes
    -----
    Labels cycle through the 10 classes; pixels are uniform random bytes.
    """
    folder = Path(root) / CIFAR10_DIR
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in [(f, n_per_batch) for f in CIFAR10_TRAIN] + [(CIFAR10_TEST, n_test)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [int(i % 10) for i in range(n)],
            b"batch_label": name.encode(),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return Path(root)
