"""The full-profile branch of the learning-dissipation chapter, shrunk to run on a CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from required_claims import REQUIRED_CLAIMS

ROOT = Path(__file__).resolve().parent.parent
IDS = set(REQUIRED_CLAIMS["learning_dissipation"])
SHRUNK = {
    "n_replicas": 2,
    "hidden": 8,
    "depth": 1,
    "n_updates": 20,
    "tau": 2,
    "n_chains": 16,
    "batch_size": 16,
    "grid_n": 16,
    "n_probe_chains": 64,
    "probe_window": 5,
    "probe_taus": "[1,2]",
    "gauss_n_datasets": 8,
    "gauss_n_noise": 4,
    "gauss_n_updates": 40,
    "gauss_taus": "[1,4]",
    "digits_n_updates": 10,
    "digits_n_replicas": 2,
}


@pytest.mark.slow
def test_full_profile_branch_runs_with_shrunk_sizes(tmp_path):
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "thermo_nb.pipeline.cli",
        "run",
        "learning_dissipation",
        "--profile",
        "full",
        "--allow-cpu-full",
        "--out",
        str(out),
        "-p",
        "device=cpu",
        "-p",
        f"output_dir={out / 'learning_dissipation'}",
    ]
    for k, v in SHRUNK.items():
        args += ["-p", f"{k}={v}"]
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = json.loads((out / "learning_dissipation" / "scorecard.json").read_text())
    assert {r["id"] for r in rows} == IDS
    assert all(r["profile"] == "full" for r in rows)
    nb = (out / "learning_dissipation.ipynb").read_text()
    assert "W_samples" in nb  # the digits (sample-only) branch ran
