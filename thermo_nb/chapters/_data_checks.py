"""Parameter validators for the chapters' dataset folders, run at validation before any
compute. The dataset modules import torch, so they are imported only when a folder is
actually given (``thermo-nb list`` stays cheap)."""

from __future__ import annotations


def mnist_folder(path: str) -> None:
    """``path`` holds MNIST (``mnist.npz`` or the four IDX files); raises
    FileNotFoundError naming the missing files."""
    from ..data.images import find_mnist_files

    find_mnist_files(path)


def cifar10_folder(path: str) -> None:
    """``path`` holds CIFAR-10's python batches; raises FileNotFoundError naming them."""
    from ..data.cifar import find_cifar10_folder

    find_cifar10_folder(path)
