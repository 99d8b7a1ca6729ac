"""``benchmarks/bench_ensemble.py``: the fair protocol's pieces and the quick mode's check.

The quick mode (for CI) exits 1 when a plain loop is faster than thermo_nb's default call.
The direction check is tested on made-up timings, both ways (fast); the quick mode itself
runs on small sizes in a subprocess (marked slow: several seconds).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_ensemble.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ensemble", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rotations_put_every_case_once_in_every_position(bench):
    orders = bench.rotations(["A", "B", "C"], 6)
    assert orders[:3] == [["A", "B", "C"], ["B", "C", "A"], ["C", "A", "B"]]
    assert orders[3:] == orders[:3]
    for position in range(3):
        assert {o[position] for o in orders} == {"A", "B", "C"}


def test_time_rotating_times_every_case_runs_times_after_warmup(bench):
    calls = []
    cases = {name: (lambda n=name: calls.append(n)) for name in "ABC"}
    times = bench.time_rotating(
        cases, runs=5, warmup=2, device=bench.torch.device("cpu")
    )
    assert {k: len(v) for k, v in times.items()} == {"A": 5, "B": 5, "C": 5}
    assert calls[:6] == ["A", "A", "B", "B", "C", "C"]  # the warm-up, then rotation
    assert calls[6:12] == ["A", "B", "C", "B", "C", "A"]


def _record(bench_name, impl, ms):
    return dict(
        threads=1, bench=bench_name, impl=impl, min_ms=ms, median_ms=ms, diff=0.0
    )


@pytest.mark.parametrize("loop_ms, failures", [(40.0, 0), (5.0, 1)])
def test_direction_check_flags_a_loop_that_beats_the_default_call(
    bench, loop_ms, failures
):
    name = "ensemble SGD step, M=50 MLPs 4 x 200 (135610 params each), batch 10"
    records = [
        _record(name, "EnsembleTrainer (default)", 10.0),
        _record(name, "loop + one SGD(foreach=True)", loop_ms),
    ]
    ratios = bench.speedups(records)
    assert len(ratios) == 1 and ratios[0]["ratio_min"] == pytest.approx(loop_ms / 10)
    assert ratios[0]["target"] == 5.0
    assert len(bench.direction_failures(ratios)) == failures


def test_quick_mode_exits_1_when_a_loop_is_faster(bench, monkeypatch, capsys):
    name = "per-sample gradients, batch 128, MLP 4 x 200"
    fake = [
        _record(name, "per_sample_gradients (default)", 9.0),
        _record(name, "loop of autograd.grad", 3.0),
    ]
    monkeypatch.setattr(bench, "measure", lambda args, data, device: fake)
    assert bench.main(["--quick"]) == 1
    assert "FAIL: loop of autograd.grad is faster" in capsys.readouterr().err


@pytest.mark.slow  # ~4 s quiet, ~8 s on a busy 2-core machine (torch import included)
def test_quick_mode_runs_and_passes_on_small_sizes(tmp_path):
    out = tmp_path / "quick.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--replicas",
            "8",
            "--width",
            "48",
            "--small-width",
            "16",
            "--psg-batch",
            "32",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "THERMO_NB_PROGRESS": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("# Benchmark") and "flock /tmp/bench.lock python " in text
    assert "CPU allocator: default" in text and "rotating order" in text
    for impl in (
        "EnsembleTrainer (default)",
        "train_loop_reference (autograd.grad)",
        "loop + one SGD(foreach=True)",
        "loop of autograd.grad",
        "torch.func vmap(grad)",
    ):
        assert impl in text
