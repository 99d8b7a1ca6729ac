"""Runtime services: device choice, seeding, the result cache and resumable loops."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import NamedTuple

import numpy as np
import pytest
import torch

from thermo_nb.runtime import (
    DeviceError,
    ResultCache,
    resolve_device,
    seed_everything,
)


def test_auto_device_is_cuda_exactly_when_a_gpu_is_visible():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="a GPU is present: cuda is valid here"
)
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(
        DeviceError, match=r"device='cuda' was requested but no CUDA GPU"
    ):
        resolve_device("cuda")


def test_unknown_device_names_the_allowed_values():
    with pytest.raises(DeviceError, match=r"one of \['auto', 'cpu', 'cuda'\]"):
        resolve_device("tpu")


def _noisy_computation():
    x = torch.randn(200, 50)
    w = torch.randn(50, 10, requires_grad=True)
    loss = torch.tanh(x @ w).pow(2).mean() + float(np.random.standard_normal())
    loss.backward()
    return torch.cat([w.grad.flatten(), loss.detach().reshape(1)])


def test_same_seed_gives_bit_identical_cpu_results():
    seed_everything(123)
    a = _noisy_computation()
    seed_everything(123)
    b = _noisy_computation()
    seed_everything(124)
    c = _noisy_computation()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_seed_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        seed_everything(bad)


def test_cache_returns_stored_value_and_keys_on_parameters(tmp_path):
    cache = ResultCache(tmp_path)
    calls = []

    def compute(v):
        calls.append(v)
        return {"x": torch.arange(3) * v, "v": v}

    r1 = cache.get_or_compute("f", {"v": 2}, lambda: compute(2))
    r2 = cache.get_or_compute("f", {"v": 2}, lambda: compute(2))
    r3 = cache.get_or_compute("f", {"v": 3}, lambda: compute(3))
    assert calls == [2, 3]
    assert torch.equal(r1["x"], r2["x"]) and r3["v"] == 3
    assert not list(tmp_path.glob("*.tmp")), "atomic writes leave no temporary files"


def test_cache_key_changes_with_package_fingerprint(tmp_path):
    cache = ResultCache(tmp_path)
    k1 = cache.key("f", {"v": 1})
    cache._fingerprint = "0.0.0-otherhash"
    assert cache.key("f", {"v": 1}) != k1


RESUMABLE_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from thermo_nb.runtime import ResultCache, run_resumable
    cache = ResultCache(sys.argv[1])
    delay = float(sys.argv[2])

    def init():
        g = torch.Generator().manual_seed(7)
        return {"x": torch.zeros(4, dtype=torch.float64), "rng": g.get_state()}

    def step(state, i):
        g = torch.Generator(); g.set_state(state["rng"])
        x = state["x"] + torch.randn(4, generator=g, dtype=torch.float64) * (1 + i % 3)
        time.sleep(delay)
        return {"x": x, "rng": g.get_state()}

    out = run_resumable(cache, "walk", {"n": 60}, init, step, 60, checkpoint_every=10,
                        on_resume=lambda s: print("RESUMED FROM", s, flush=True))
    torch.save(out["x"], sys.argv[3])
""")


def test_killed_run_resumes_from_checkpoint_and_matches_uninterrupted_run(tmp_path):
    script = tmp_path / "walk.py"
    script.write_text(RESUMABLE_SCRIPT)
    env = dict(os.environ, THERMO_NB_PROGRESS="0")
    # reference: uninterrupted, fresh cache
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "c_ref"),
            "0",
            str(tmp_path / "ref.pt"),
        ],
        check=True,
        env=env,
    )
    # interrupted: kill -9 once a checkpoint exists, half-way through
    cache_dir = tmp_path / "c_kill"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(cache_dir),
            "0.05",
            str(tmp_path / "killed.pt"),
        ],
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(cache_dir.glob("walk-*.pkl")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed.pt").exists(), "the run was killed before finishing"
    assert list(cache_dir.glob("walk-*.pkl")), (
        "a checkpoint was written before the kill"
    )
    res = subprocess.run(
        [
            sys.executable,
            str(script),
            str(cache_dir),
            "0",
            str(tmp_path / "resumed.pt"),
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    resumed_from = int(res.stdout.split("RESUMED FROM")[1].split()[0])
    assert 10 <= resumed_from < 60
    assert torch.equal(
        torch.load(tmp_path / "ref.pt"), torch.load(tmp_path / "resumed.pt")
    )
    # a third run finds the final result and computes nothing
    res = subprocess.run(
        [sys.executable, str(script), str(cache_dir), "0", str(tmp_path / "again.pt")],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "RESUMED" not in res.stdout
    assert torch.equal(
        torch.load(tmp_path / "ref.pt"), torch.load(tmp_path / "again.pt")
    )


class Pair(NamedTuple):
    a: torch.Tensor
    b: float


def test_cache_round_trips_named_tuples_of_tensors(tmp_path):
    cache = ResultCache(tmp_path)
    value = cache.get_or_compute("nt", {}, lambda: Pair(torch.ones(2), 3.0))
    again = cache.get_or_compute("nt", {}, lambda: None)
    assert isinstance(again, Pair) and torch.equal(again.a, value.a) and again.b == 3.0


# ----------------------------------------------------------------------------- allocator


def test_tune_cpu_allocator_sets_huge_pages_only_before_torch_import():
    code = (
        "import os, sys; os.environ.pop('THP_MEM_ALLOC_ENABLE', None)\n"
        "from thermo_nb import tune_cpu_allocator\n"
        "{before}\n"
        "s = tune_cpu_allocator()\n"
        "import torch; x = torch.ones(2**20); print(s['huge_pages'], s['keep_freed_memory'],"
        " os.environ.get('THP_MEM_ALLOC_ENABLE'), float(x.sum()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    fresh = subprocess.run(
        [sys.executable, "-c", code.format(before="")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    late = subprocess.run(
        [sys.executable, "-c", code.format(before="import torch")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    glibc = sys.platform.startswith("linux")
    assert fresh == ["True", str(glibc), "1", "1048576.0"]
    assert late == ["False", str(glibc), "None", "1048576.0"]


# ----------------------------------------------------------------------------- output pool

POOLED_SHAPE = (256, 1024)  # 1 MiB of float32: the smallest pooled size


def test_pooled_buffer_is_reused_only_when_nothing_refers_to_it():
    from thermo_nb.runtime.output_pool import pooled_empty

    def values(held):
        if isinstance(held, torch.UntypedStorage):
            return torch.empty(0).set_(held)
        return torch.as_tensor(held)

    # a view, the storage or a numpy array of a result keeps its buffer out of the pool
    for keep in (
        lambda t: t[3:].view(-1),
        lambda t: t.untyped_storage(),
        lambda t: t.numpy(),
    ):
        result = pooled_empty(POOLED_SHAPE).fill_(1.0)
        ptr = result.data_ptr()
        held = keep(result)
        del result
        others = [pooled_empty(POOLED_SHAPE).fill_(2.0) for _ in range(3)]
        assert all(o.data_ptr() != ptr for o in others)
        assert bool((values(held) == 1.0).all())
        del held, others
    # once nothing refers to it, the next request gets the same memory back
    result = pooled_empty(POOLED_SHAPE)
    ptr = result.data_ptr()
    del result
    assert pooled_empty(POOLED_SHAPE).data_ptr() == ptr


def test_pool_memory_is_bounded_and_small_or_odd_requests_bypass_it(monkeypatch):
    from thermo_nb.runtime import output_pool

    output_pool.clear_output_pool()
    monkeypatch.setattr(output_pool, "MAX_POOLED_BYTES", 3 * 2**20)
    held = [output_pool.pooled_empty(POOLED_SHAPE) for _ in range(5)]
    assert output_pool._pooled_bytes() <= 3 * 2**20  # the other two are not pooled
    assert len({t.data_ptr() for t in held}) == 5
    del held
    assert output_pool.clear_output_pool() == 3 * 2**20
    assert output_pool._pooled_bytes() == 0
    small = output_pool.pooled_empty((4, 4))
    small.resize_(100)  # an ordinary torch allocation (resizable)
    bf16 = output_pool.pooled_empty(POOLED_SHAPE, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and output_pool._pooled_bytes() == 0


def test_atomic_write_respects_the_umask(tmp_path):
    from thermo_nb.runtime.cache import atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o600


def test_cache_write_killed_mid_write_leaves_no_debris_after_the_next_write(tmp_path):
    """A writer killed with SIGKILL between creating its temporary and renaming it
    leaves `.name.<pid>.*.tmp`; the next write of the same path removes it (the writer
    is dead), while a live writer's temporary is kept."""
    import signal

    from thermo_nb.runtime.cache import atomic_write_bytes

    target = tmp_path / "result.pkl"
    code = (
        "import os, signal, tempfile\n"
        f"fd, tmp = tempfile.mkstemp(dir={str(tmp_path)!r}, "
        "prefix='.result.pkl.' + str(os.getpid()) + '.', suffix='.tmp')\n"
        "os.write(fd, b'partial')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    res = subprocess.run([sys.executable, "-c", code])
    assert res.returncode == -signal.SIGKILL
    debris = list(tmp_path.glob(".result.pkl.*.tmp"))
    assert len(debris) == 1
    live = tmp_path / f".result.pkl.{os.getpid()}.keepme.tmp"  # this process: alive
    live.write_bytes(b"in progress")
    atomic_write_bytes(target, b"complete")
    assert target.read_bytes() == b"complete"
    assert not debris[0].exists()
    assert live.exists()
