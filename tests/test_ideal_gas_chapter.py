"""The ideal-gas chapter's full-profile branch (ConvNet-SI on CIFAR-10) is executed code:
it runs here on the CPU with every size shrunk and a tiny fake CIFAR-10 in the
python-pickle batch format (``thermo_nb.data.cifar.write_fake_cifar10``); without
``data_root`` the full profile fails fast, naming it."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from required_claims import REQUIRED_CLAIMS

from thermo_nb.data.cifar import write_fake_cifar10
from thermo_nb.pipeline.registry import get_chapter

ROOT = Path(__file__).resolve().parent.parent

REQUIRED = REQUIRED_CLAIMS["ideal_gas"]

SHRUNK = {
    "iso_dims": [3, 5],
    "iso_grid": 3,
    "iso_eta_range": [0.05, 0.2],
    "iso_wd_range": [0.05, 0.2],
    "iso_radii": [0.5, 1.0, 2.0],
    "iso_replicas": 32,
    "iso_steps": 600,
    "iso_snapshots": 2,
    "net_width": 1,
    "net_grid": 3,
    "net_elr_range": [0.01, 0.02],
    "net_lr_range": [0.05, 0.1],
    "net_wd_range": [0.01, 0.1],
    "net_radii": [0.5, 1.0, 2.0],
    "net_steps": 40,
    "net_batch": 8,
    "net_snapshots": 16,
    "noise_batches": 2,
    "cifar_per_class": 4,
}


def test_every_full_size_is_shrunk():
    sizes = {p.name for p in get_chapter("ideal_gas").params if p.profiles}
    assert sizes <= set(SHRUNK)


def test_data_root_is_checked_at_validation(tmp_path):
    from thermo_nb.pipeline.params import ParameterError

    spec = get_chapter("ideal_gas")
    with pytest.raises(ParameterError, match="data_root"):
        spec.param("data_root").check(str(tmp_path))
    root = write_fake_cifar10(tmp_path / "cifar", n_per_batch=4, n_test=4)
    assert spec.param("data_root").check(str(root)) == str(root)


def _run(args, tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", "run", "ideal_gas", *args]
        + ["--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_full_profile_without_data_root_fails_naming_it(tmp_path):
    res = _run(["--profile", "full", "-p", "device=cpu"], tmp_path)
    assert res.returncode != 0
    assert "data_root" in res.stdout + res.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_full_branch_runs_shrunk_on_fake_cifar(tmp_path):
    root = write_fake_cifar10(tmp_path / "cifar", n_per_batch=10, n_test=10)
    params = ["-p", f"data_root={root}", "-p", "device=cpu"]
    for name, value in SHRUNK.items():
        params += ["-p", f"{name}={json.dumps(value)}"]
    t0 = time.monotonic()
    res = _run(["--profile", "full", *params], tmp_path)
    seconds = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    rows = json.loads((tmp_path / "out" / "ideal_gas" / "scorecard.json").read_text())
    assert {r["profile"] for r in rows} == {"full"}
    assert set(REQUIRED) <= {r["id"] for r in rows}
    print(f"ideal_gas: full profile, shrunk, ran in {seconds:.0f} s")
