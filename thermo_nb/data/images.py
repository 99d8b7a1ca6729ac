"""Small data sets as tensors: scikit-learn's 8x8 digits (always available, no download)
and MNIST from a local copy (never downloaded)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..runtime import resolve_device

MNIST_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
MNIST_NPZ = "mnist.npz"


class TensorSplits(NamedTuple):
    """Train/test split as tensors: features ``(N, D)`` float, labels ``(N,)`` int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max().item()) + 1

    @property
    def in_dim(self) -> int:
        return int(self.x_train[0].numel())


def _standardise(x_train: np.ndarray, x_test: np.ndarray):
    """Standardise features with the *training* mean and std (constant features -> std 1)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def load_digits_tensors(
    device=None,
    dtype=torch.float32,
    test_fraction: float = 0.2,
    seed: int = 0,
    standardise: bool = True,
) -> TensorSplits:
    """scikit-learn's handwritten digits (1797 images of 8x8 pixels, 10 classes) as tensors.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}, torch.device or None
        Where the tensors live (``None`` = ``"auto"``; see ``thermo_nb.resolve_device``).
    dtype : torch floating dtype
        Dtype of the features (labels are int64).
    test_fraction : float in (0, 1)
        Fraction held out as test set, stratified by class.
    seed : int >= 0
        Seed of the split.
    standardise : bool
        Subtract the training mean and divide by the training std, feature by feature
        (features that are constant on the training set are only centred).

    Returns
    -------
    TensorSplits
        ``x_train (N_train, 64)``, ``y_train (N_train,)``, ``x_test``, ``y_test``; with the
        defaults N_train = 1437 and N_test = 360.

    Examples
    --------
    >>> d = load_digits_tensors(device="cpu")
    >>> d.x_train.shape, d.n_classes
    (torch.Size([1437, 64]), 10)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (isinstance(test_fraction, float) and 0.0 < test_fraction < 1.0):
        raise ValueError(
            f"test_fraction must be a float in (0, 1), got {test_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    dev = resolve_device(device)
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x.astype(np.float64),
        y,
        test_size=test_fraction,
        random_state=int(seed),
        stratify=y,
    )
    if standardise:
        x_tr, x_te = _standardise(x_tr, x_te)
    as_x = lambda a: torch.as_tensor(a, dtype=dtype, device=dev)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64, device=dev)  # noqa: E731
    return TensorSplits(as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te))


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic, dims (big-endian uint32), uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(
            f"{path}: header announces shape {tuple(dims)} but holds {data.size} bytes"
        )
    return data.reshape(tuple(dims))


def _find_idx(root: Path, stem: str) -> "Path | None":
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def find_mnist_files(data_root) -> "tuple[Path, Path | dict[str, Path]]":
    """Locate a local MNIST copy without reading it (the check run at parameter
    validation, before any compute).

    Parameters
    ----------
    data_root : str or path
        See :func:`load_mnist`.

    Returns
    -------
    (root, layout)
        ``layout`` is the path of ``mnist.npz`` or a dict of the four IDX files.

    Raises
    ------
    FileNotFoundError
        Naming the folder and the expected files.
    """
    root = Path(os.fspath(data_root)).expanduser()
    expected = (
        f"either {MNIST_NPZ} or the IDX files {', '.join(MNIST_IDX_FILES.values())} "
        "(optionally .gz; in the folder itself, raw/ or MNIST/raw/)"
    )
    if not root.is_dir():
        raise FileNotFoundError(
            f"MNIST data_root {str(root)!r} does not exist or is not a "
            f"folder; it must contain {expected}. thermo_nb never downloads "
            "data."
        )
    if (root / MNIST_NPZ).is_file():
        return root, root / MNIST_NPZ
    paths = {k: _find_idx(root, stem) for k, stem in MNIST_IDX_FILES.items()}
    missing = [MNIST_IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST data_root {str(root)!r} holds no {MNIST_NPZ} and "
            f"lacks {missing}; it must contain {expected}."
        )
    return root, paths


def load_mnist(
    data_root,
    device=None,
    dtype=torch.float32,
    flatten: bool = True,
    standardise: bool = True,
) -> TensorSplits:
    """MNIST from a local copy; never downloads.

    Parameters
    ----------
    data_root : str or path
        Folder holding either ``mnist.npz`` (keys ``x_train, y_train, x_test, y_test``, the
        Keras layout) or the four torchvision-style raw IDX files
        ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
        ``t10k-labels-idx1-ubyte`` (optionally ``.gz``), directly in ``data_root``, in
        ``data_root/raw`` or in ``data_root/MNIST/raw``.
    device : {"auto", "cpu", "cuda"}, torch.device or None
    dtype : torch floating dtype
    flatten : bool
        Images as ``(N, 784)`` (True) or ``(N, 28, 28)``.
    standardise : bool
        Pixels are scaled to [0, 1]; if True they are then centred and scaled by the
        training set's global pixel mean and std (one scalar each).

    Returns
    -------
    TensorSplits
        60000 training and 10000 test images for the standard files.

    Raises
    ------
    FileNotFoundError
        If ``data_root`` is missing or holds neither layout; the message names the folder
        and the expected files.
    """
    root, layout = find_mnist_files(data_root)
    if isinstance(layout, Path):
        with np.load(layout) as z:
            arrays = {k: z[k] for k in MNIST_IDX_FILES}
    else:
        arrays = {k: _read_idx(p) for k, p in layout.items()}
    dev = resolve_device(device)
    x_tr = arrays["x_train"].astype(np.float64) / 255.0
    x_te = arrays["x_test"].astype(np.float64) / 255.0
    if standardise:
        mean, std = x_tr.mean(), x_tr.std()
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    if flatten:
        x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    as_x = lambda a: torch.as_tensor(a, dtype=dtype, device=dev)  # noqa: E731
    as_y = lambda a: torch.as_tensor(np.asarray(a).astype(np.int64), device=dev)  # noqa: E731
    return TensorSplits(
        as_x(x_tr), as_y(arrays["y_train"]), as_x(x_te), as_y(arrays["y_test"])
    )
