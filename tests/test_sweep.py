"""``thermo-nb sweep``: grid syntax, checks before submission, the combined table, and
real sweeps of a shrunk ``dimensional_analysis`` through submitit's local executor (and a
local Slurm cluster where ``sbatch`` is available): kill and resume, skip on re-submit,
a failing point that does not stop the others."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thermo_nb.pipeline.params import ParameterError
from thermo_nb.pipeline.sweep import (
    Point,
    grid_points,
    parse_grid,
    point_folder,
    point_name,
    split_top_level,
    write_tables,
)

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "dimensional_analysis"
#: every size of the chapter at (or near) its lower bound: ~1 min per point on 2 cores
SHRUNK = [
    "-p",
    "n_replicas=1",
    "-p",
    "sweep_max_steps=200",
    "-p",
    "train_steps=50",
    "-p",
    "n_draws=4",
    "-p",
    "lm_widths=[32]",
    "-p",
    "hidden=16",
]


def thermo_nb(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


# ----------------------------------------------------------------------------- grid


@pytest.mark.parametrize(
    "text,values",
    [
        ("1e-3,1e-2", ["1e-3", "1e-2"]),
        ("[32,64]", ["[32,64]"]),
        ("[32,64],[64, 128]", ["[32,64]", "[64, 128]"]),
        ("'a,b',c", ["'a,b'", "c"]),
        ("{x: 1, y: 2},3", ["{x: 1, y: 2}", "3"]),
    ],
)
def test_values_split_on_top_level_commas_only(text, values):
    assert split_top_level(text, "x") == values


@pytest.mark.parametrize(
    "pair,message",
    [
        ("lr=1e-3,,1e-2", "parameter 'lr': empty value in grid"),
        ("lr=1e-3,", "parameter 'lr': empty value in grid"),
        ("lm_widths=[32,64", "parameter 'lm_widths': unclosed bracket (missing ']')"),
        ("lm_widths=32]", "parameter 'lm_widths': unbalanced ']'"),
        ("x='a,b", "parameter 'x': unclosed quote"),
        ("seed", "-p expects NAME=V1,V2"),
        ("output_dir=a,b", "parameter 'output_dir' cannot be swept"),
    ],
)
def test_bad_grid_syntax_names_the_parameter(pair, message):
    with pytest.raises(ParameterError) as e:
        parse_grid([pair])
    assert message in str(e.value)


def test_grid_is_the_cartesian_product_and_names_are_stable():
    grid = parse_grid(["seed=0,1", "lr=1e-3,1e-2", "lm_widths=[32,64],[8]", "n=3"])
    assert grid["lm_widths"] == [[32, 64], [8]] and grid["n"] == [3]
    points = grid_points(grid)
    assert len(points) == 8 and points[0] == {
        "seed": 0,
        "lr": 1e-3,
        "lm_widths": [32, 64],
        "n": 3,
    }
    names = [point_name(p, ["seed", "lr", "lm_widths"]) for p in points]
    assert len(set(names)) == 8
    assert names[0].startswith("seed-0_lr-0.001_lm_widths-_32_64_")
    assert point_name(points[0], ["seed"]) != point_name(points[1], ["seed"])
    with pytest.raises(ParameterError, match="'seed' is given twice"):
        parse_grid(["seed=0", "seed=1"])


def test_a_point_keeps_its_folder_when_the_grid_changes_shape(tmp_path):
    first = point_folder(tmp_path, {"seed": 0, "lr": 0.1}, ["seed", "lr"])
    first.mkdir()
    assert point_folder(tmp_path, {"seed": 0, "lr": 0.1}, []) == first
    assert point_folder(tmp_path, {"seed": 1, "lr": 0.1}, []) != first


def test_combined_table_and_differing_verdicts(tmp_path):
    class FakeJob:
        def __init__(self, d):
            self.output_dir = d
            self.output = d.parent / "x.ipynb"
            self.log = d.parent / "x.log"

    rows = lambda verdict: [  # noqa: E731
        {
            "id": "claim_a",
            "claim": "c",
            "source": "s",
            "expected": 1.0,
            "measured": [1, 2],
            "tolerance": "±1",
            "verdict": verdict,
            "profile": "quick",
        }
    ]
    points = []
    for seed, verdict in ((0, "reproduced"), (1, "refuted")):
        d = tmp_path / f"p{seed}" / "out"
        d.mkdir(parents=True)
        (d / "scorecard.json").write_text(json.dumps(rows(verdict)))
        points.append(Point(f"p{seed}", {"seed": seed}, d.parent, FakeJob(d), "done"))
    points.append(
        Point("p2", {"seed": 2}, tmp_path, FakeJob(tmp_path / "nope"), "failed")
    )
    sweep_csv, points_csv, differing = write_tables(points, tmp_path)
    table = list(csv.DictReader(sweep_csv.open()))
    assert [(r["point"], r["seed"], r["verdict"]) for r in table] == [
        ("p0", "0", "reproduced"),
        ("p1", "1", "refuted"),
    ]
    assert table[0]["measured"] == "[1, 2]"
    assert differing == {"claim_a": {"reproduced": ["p0"], "refuted": ["p1"]}}
    status = {r["point"]: r["status"] for r in csv.DictReader(points_csv.open())}
    assert status == {"p0": "done", "p1": "done", "p2": "failed"}


# ----------------------------------------------------------------------------- CLI checks


@pytest.mark.parametrize(
    "args,message",
    [
        (["--executor", "pbs"], "--executor: unknown executor 'pbs'; valid executors:"),
        (
            ["-p", "seed=0,-1"],
            "grid point seed=-1: parameter 'seed': below the minimum",
        ),
        (["-p", "lm_widths=[32,64"], "parameter 'lm_widths': unclosed bracket"),
        (["-p", "n_sampels=1,2"], "unknown parameter(s) ['n_sampels']"),
        (["--partition", "gpu"], "--partition: applies to --executor slurm only"),
        (["--max-parallel", "0"], "--max-parallel: must be a positive integer"),
    ],
)
def test_sweep_refuses_bad_input_before_submitting(args, message, tmp_path):
    res = thermo_nb("sweep", CHAPTER, "--out", str(tmp_path), *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr
    assert not (tmp_path / "submitit").exists(), "nothing was submitted"


def test_slurm_executor_without_sbatch_is_refused(tmp_path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    res = thermo_nb(
        "sweep", CHAPTER, "--executor", "slurm", "--out", str(tmp_path), env=env
    )
    assert res.returncode == 2
    assert "--executor slurm: `sbatch` is not on the PATH" in res.stderr


# ----------------------------------------------------------------------------- real sweeps


def _statuses(out: Path) -> dict:
    return {
        r["data_path"]: r["status"] for r in csv.DictReader((out / "points.csv").open())
    }


@pytest.mark.slow
def test_local_sweep_resumes_after_a_kill_reports_a_failure_and_skips_finished(
    tmp_path,
):
    """Two points: the chapter as is, and one whose data_path is a CSV without the
    expected columns (it fails in section 2). Kill the whole sweep once the good point
    has cached a result, re-run it (the good point resumes from its cache and finishes,
    the bad one is reported with its log), then re-submit the good point: skipped."""
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    out = tmp_path / "sweep"
    args = ["sweep", CHAPTER, "--out", str(out), "--max-parallel", "2", *SHRUNK]
    grid = ["-p", f"data_path=null,{bad}"]
    good_cache = None

    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", *args, *grid],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed as a whole below
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            caches = [
                c
                for c in out.glob(f"points/data_path-null_*/{CHAPTER}/cache")
                if any(c.glob("*.pkl"))
            ]
            if caches:
                good_cache = caches[0]
                break
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert good_cache is not None, (tmp_path / "first.log").read_text()[-3000:]
    cached = {p.name for p in good_cache.glob("*.pkl")}
    assert not list(out.glob("points/*/*.key")), "killed before any point finished"

    res = thermo_nb(*args, *grid)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "[sweep] finished 1/2 (0 skipped), running 0, failed 1" in res.stdout
    failed = [ln for ln in res.stderr.splitlines() if "[sweep] FAILED point" in ln]
    assert len(failed) == 1 and str(bad) in failed[0]
    log_path = Path(failed[0].split("log(s): ")[1].split(",")[0].strip())
    assert log_path.is_file() and "column 'Model Size' missing" in res.stderr
    assert cached <= {p.name for p in good_cache.glob("*.pkl")}
    status = _statuses(out)
    assert sorted(status.values()) == ["done", "failed"]
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert rows and {r["data_path"] for r in rows} == {""}
    assert {"id", "verdict", "measured", "point"} <= set(rows[0])

    t0 = time.monotonic()
    res = thermo_nb(*args, "-p", "data_path=null")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[sweep] finished 1/1 (1 skipped), running 0, failed 0" in res.stdout
    assert time.monotonic() - t0 < 30


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("sbatch") is None,
    reason="sbatch not on the PATH: no Slurm here (bash tests/slurm/start_local_slurm.sh "
    "installs Debian's slurm-wlm + munge and starts a one-node cluster)",
)
def test_slurm_sweep_on_a_local_cluster(tmp_path):
    ping = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=60
    )
    if ping.returncode != 0 or not ping.stdout.strip():
        pytest.skip(f"sbatch exists but no Slurm controller answers: {ping.stderr}")
    out = tmp_path / "sweep"
    res = thermo_nb(
        "sweep",
        CHAPTER,
        "--executor",
        "slurm",
        "--time",
        "10",
        "--out",
        str(out),
        *SHRUNK,
        "-p",
        "seed=0,1",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[sweep] finished 2/2 (0 skipped), running 0, failed 0" in res.stdout
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert {r["seed"] for r in rows} == {"0", "1"}
    res = thermo_nb(
        "sweep", CHAPTER, "--executor", "slurm", "--out", str(out), *SHRUNK,
        "-p", "seed=0,1",
    )  # fmt: skip
    assert "[sweep] finished 2/2 (2 skipped)" in res.stdout, res.stdout + res.stderr
