"""Chapter *SGD noise as a heat bath*: its parameter specification, its verdict rules
(applied mechanically, nothing from a NaN), the closed form of the shuffling control, and a
run of the full-profile branch (MNIST code path) with every size shrunk, on a tiny fake
MNIST written as IDX files."""

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from required_claims import REQUIRED_CLAIMS

from thermo_nb.chapters import CHAPTER_MODULES
from thermo_nb.chapters import sgd_heat_bath as ch
from thermo_nb.pipeline.params import ParameterError
from thermo_nb.pipeline.validation import Config, check_values

ROOT = Path(__file__).resolve().parent.parent
CLAIMS = set(REQUIRED_CLAIMS["sgd_heat_bath"])


def test_chapter_is_registered_and_every_size_has_both_bounds():
    assert "sgd_heat_bath" in CHAPTER_MODULES
    for p in ch.SPEC.params:
        if p.type in (int, float, list) and p.name != "seed":
            assert p.low is not None and p.high is not None, p.name
    values = check_values("sgd_heat_bath", {"profile": "quick"})
    assert values["n_replicas"] == 50 and values["batch_sizes"] == [1, 10, 100]


def test_full_profile_without_data_root_fails_naming_data_root():
    cfg = Config(check_values("sgd_heat_bath", {"profile": "full"}))
    with pytest.raises(ParameterError, match="data_root"):
        ch.check_config(cfg)
    bad = Config(check_values("sgd_heat_bath", {"max_lag": 80}))
    with pytest.raises(ParameterError, match="max_lag"):
        ch.check_config(bad)


def test_verdict_rules():
    assert (
        ch.verdict_noise_stationary({1: (0.1, 0.05), 10: (-0.05, 0.1)}) == "reproduced"
    )
    assert (
        ch.verdict_noise_stationary({1: (0.5, 0.05), 10: (0.1, 0.1)})
        == "partially reproduced"
    )
    assert ch.verdict_noise_stationary({1: (2.0, 0.1)}) == "not reproduced"
    assert ch.verdict_noise_stationary({1: (math.nan, 0.1)}) == "inconclusive"
    assert ch.verdict_noise_white({1: 0.5, 10: 0.2}) == "reproduced"
    assert ch.verdict_noise_white({1: 0.5, 10: 0.001}) == "partially reproduced"
    assert ch.verdict_slope(-1.05, 0.02, -1.0) == "reproduced"
    assert ch.verdict_slope(-1.3, 0.02, -1.0) == "not reproduced"
    assert ch.verdict_slope(math.nan, 0.02, -1.0) == "inconclusive"
    assert ch.verdict_force_dominates({1: (5.0, 1.0), 10: (0.5, 0.1)}) == (
        "partially reproduced"
    )
    assert ch.verdict_low_variance({("accuracy", 1): 0.5}) == "reproduced"
    assert ch.verdict_layers_differ({1: (0.1, 0.1)}) == "not reproduced"
    assert ch.verdict_isotropic({1: (49.0, 1.0)}, 50) == "reproduced"
    assert ch.verdict_isotropic({1: (5.0, 1.0)}, 50) == "refuted"
    assert ch.verdict_isotropic({1: (30.0, 1.0)}, 50) == "not reproduced"


def test_shuffle_control_closed_form():
    rho = ch.shuffle_autocorrelation(1400, 100, [0, 1, 7, 14, 20])
    np.testing.assert_allclose(rho, [1.0, -(13 / 14) / 13, -0.5 / 13, 0.0, 0.0])


def test_record_schedule_has_window_and_block_inside_the_run():
    s = ch.record_schedule(200, 10, 30)
    assert s["record_at"][0] == 0 and s["record_at"].max() < 200
    assert s["window"].min() >= 100 and s["window"].max() < 170
    assert list(s["autocorr"]) == list(range(170, 200))


def _write_idx(path: Path, arr: np.ndarray) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


@pytest.mark.slow
def test_full_profile_branch_runs_on_a_tiny_fake_mnist(tmp_path):
    rng = np.random.default_rng(0)
    y_tr, y_te = rng.integers(0, 10, 240), rng.integers(0, 10, 60)
    proto = rng.integers(0, 256, (10, 28, 28))
    noisy = lambda y: np.clip(proto[y] + rng.normal(0, 60, (len(y), 28, 28)), 0, 255)  # noqa: E731
    root = tmp_path / "mnist"
    root.mkdir()
    for name, arr in {
        "train-images-idx3-ubyte.gz": noisy(y_tr),
        "train-labels-idx1-ubyte.gz": y_tr,
        "t10k-images-idx3-ubyte.gz": noisy(y_te),
        "t10k-labels-idx1-ubyte.gz": y_te,
    }.items():
        _write_idx(root / name, arr)
    out = tmp_path / "out"
    sizes = dict(
        n_replicas=6,
        batch_sizes="[1, 4, 16]",
        hidden=8,
        depth=2,
        n_steps=80,
        n_records=6,
        autocorr_block=12,
        max_lag=3,
        n_permutations=50,
        n_lr_replicas=2,
        n_control_replicas=3,
        probe_dim=5,
        n_probe_replicas=2,
        pr_examples=64,
        n_bootstrap=100,
    )
    cmd = [
        sys.executable,
        "-m",
        "thermo_nb.pipeline.cli",
        "run",
        "sgd_heat_bath",
        "--profile",
        "full",
        "--allow-cpu-full",
        "--out",
        str(tmp_path / "nb"),
        "-p",
        "device=cpu",
        "-p",
        f"data_root={root}",
        "-p",
        f"output_dir={out}",
    ]
    for k, v in sizes.items():
        cmd += ["-p", f"{k}={v}"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = json.loads((out / "scorecard.json").read_text())
    assert {r["id"] for r in rows} == CLAIMS
    assert all(r["profile"] == "full" for r in rows)


def test_matched_loss_exponent_recovers_inverse_batch_law_at_equal_progress():
    """Runs that reach the same loss at different steps, with <eta^2> = c(loss)/B at every
    step: compared at equal step the exponent is off, at equal loss it is exactly -1."""
    steps = np.arange(0, 100)
    runs = {}
    for b, speed in ((1, 0.02), (10, 0.05), (100, 0.1)):
        loss = 2.3 * np.exp(-speed * steps)
        var = (loss / b)[:, None] * np.ones((1, 4))
        runs[b] = {
            "train_loss": loss[:, None] * np.ones((1, 4)),
            "noise_var": var,
            "steps": steps,
            "diverged": np.zeros(4, dtype=bool),
        }
    tab = ch.matched_loss_exponents(runs, 3, 50, 0)
    assert len(tab) == 3
    # the first record at or below each level differs from the level by < one step's decay
    np.testing.assert_allclose(tab["exponent of ⟨η²⟩ in B"], -1.0, atol=0.03)
