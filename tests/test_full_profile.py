"""The ``full`` profile is executed code: each chapter's full branch runs here on the CPU
with every size shrunk through parameters, so a typo in the full path fails the suite
instead of a user's GPU job. (The chapters added later bring their own such tests.)

Every parameter with a profile default is set (test_every_profile_size_is_shrunk
fails when a chapter gains one), so the full branch's code runs at toy sizes: seifert's
recorded-coordinate subset and gradient-example subset, dimensional_analysis' wider LM
list; ``huber_grid`` is set to ``coarse`` (the full ``hoffmann`` grid is 4,500 L-BFGS
starts, minutes on a CPU). Without ``data_root`` seifert's full branch trains on
scikit-learn's digits, as MNIST is not on this machine.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thermo_nb.pipeline.registry import get_chapter

ROOT = Path(__file__).resolve().parent.parent

SHRUNK = {
    "seifert": {
        "n_replicas": 8,
        "n_trajectories": 200,
        "dt": 0.02,
        "hidden": 8,
        "depth": 2,
        "n_sgd_steps": 40,
        "record_every": 10,
        "subspace_dim": 2,
        "n_recorded_coords": 60,
        "grad_examples": 64,
        "n_stationary_steps": 80,  # the TUR estimate needs >= 120 transitions
        "n_distance_steps": 200,
        "n_distance_replicas": 2,
        "n_bump_replicas": 16,
    },
    "dimensional_analysis": {
        "n_replicas": 1,
        "lm_widths": [16, 32],
        "hidden": 8,
        "train_steps": 50,
        "sweep_max_steps": 200,
        "n_draws": 4,
        "n_bootstrap": 10,
        "huber_grid": "coarse",
    },
}


def _full_defaults(chapter: str) -> set[str]:
    """The size parameters of a chapter: those with a profile default."""
    return {p.name for p in get_chapter(chapter).params if p.profiles}


@pytest.mark.parametrize("chapter", list(SHRUNK))
def test_every_profile_size_is_shrunk(chapter):
    assert _full_defaults(chapter) <= set(SHRUNK[chapter])


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("chapter", list(SHRUNK))
def test_full_branch_runs_shrunk_on_the_cpu(chapter, tmp_path):
    params = []
    for name, value in SHRUNK[chapter].items():
        params += ["-p", f"{name}={json.dumps(value)}"]
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", "run", chapter]
        + ["--profile", "full", "-p", "device=cpu", *params, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    rows = json.loads((tmp_path / chapter / "scorecard.json").read_text())
    assert rows and {r["profile"] for r in rows} == {"full"}
    print(f"{chapter}: full profile, shrunk, ran in {seconds:.0f} s")
