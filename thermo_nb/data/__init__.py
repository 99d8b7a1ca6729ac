"""Datasets, read from disk only (nothing is downloaded): scikit-learn's bundled digits,
and MNIST from a local ``data_root``."""

from .images import TensorSplits, find_mnist_files, load_digits_tensors, load_mnist

__all__ = ["TensorSplits", "find_mnist_files", "load_digits_tensors", "load_mnist"]
