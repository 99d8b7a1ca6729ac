"""The free-energy chapter: the full profile's code path on a tiny fake CIFAR-10, and its
fail-fast refusal without data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from required_claims import REQUIRED_CLAIMS

from thermo_nb.data.cifar import load_cifar10, write_fake_cifar10
from thermo_nb.pipeline.params import ParameterError

ROOT = Path(__file__).resolve().parent.parent
IDS = REQUIRED_CLAIMS["free_energy"]


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_full_profile_without_data_root_fails_fast_naming_it():
    from thermo_nb.chapters.free_energy import SPEC

    values = {p.name: p.profiles.get("full", p.default) for p in SPEC.params}
    values.update(profile="full", device="cpu", data_root=None)
    with pytest.raises(ParameterError, match="data_root"):
        SPEC.plan(values)
    res = _cli("run", "free_energy", "--profile", "full", "-p", "device=cpu")
    assert res.returncode != 0
    assert "data_root" in res.stdout + res.stderr


def test_cifar_reader_reads_the_python_format_and_never_downloads(tmp_path):
    root = write_fake_cifar10(tmp_path, n_per_batch=12, n_test=8)
    d = load_cifar10(root, device="cpu")
    assert tuple(d.x_train.shape) == (60, 3, 32, 32) and d.y_test.shape[0] == 8
    assert load_cifar10(root, device="cpu", samples_per_label=2).x_train.shape[0] == 20
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path / "missing")


@pytest.mark.slow
def test_full_profile_branch_runs_with_shrunk_sizes(tmp_path):
    root = write_fake_cifar10(tmp_path / "data", n_per_batch=16, n_test=8)
    out = tmp_path / "out"
    sizes = {
        "device": "cpu", "data_root": str(root), "output_dir": str(out),
        "toy_n_steps": 300, "toy_n_lrs": 6, "toy_replicas": 10, "toy_window": 20,
        "toy_window_replicas": 2, "toy_batch_sizes": "[1, 2]", "up_n_steps": 60,
        "op_n_steps": 50,
        "net_lrs": "[0.01, 0.1, 1.0]", "op_lrs": "[0.01, 0.1]", "up_width": 1, "op_width": 1,
        "batch_size": 8, "net_batch_sizes": "[4]", "n_log": 8, "n_avg": 4, "window": 4,
        "entropy_k": 2, "snr_batches": 2, "lr_chunk": 2,
    }  # fmt: skip
    args = ["run", "free_energy", "--profile", "full"]
    for k, v in sizes.items():
        args += ["-p", f"{k}={v}"]
    res = _cli(*args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    rows = json.loads((out / "scorecard.json").read_text())
    assert [r["id"] for r in rows] == IDS
    assert all(r["profile"] == "full" for r in rows)
    # the network runs went through the resumable cache (one final state per group)
    assert len(list((out / "cache").glob("fe_*-final-*.pkl"))) >= 4
