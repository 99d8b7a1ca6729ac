"""Suite-wide settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread():
    """The suite's tensors are small: one intra-op thread is fastest, and on a busy 2-core
    machine two OpenMP threads were measured up to ~100x slower for tiny matmuls.
    (Notebooks executed by the book build run in their own processes and are not affected.)"""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
