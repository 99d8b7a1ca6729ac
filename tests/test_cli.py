"""The thermo-nb command line and plain papermill refuse bad parameters with clear messages."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from thermo_nb.chapters import CHAPTER_MODULES

ROOT = Path(__file__).resolve().parent.parent


def thermo_nb(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def test_list_shows_every_chapter_and_its_parameters():
    res = thermo_nb("list")
    assert res.returncode == 0, res.stderr
    for chapter in CHAPTER_MODULES:
        assert f"{chapter}  (book/{chapter}.ipynb)" in res.stdout
    for name in ("profile", "device", "seed", "output_dir"):
        assert f"    {name} " in res.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["run", "nochapter"],
            "unknown chapter 'nochapter'; valid chapters: ['seifert'",
        ),
        (
            ["run", "seifert", "--profile", "huge"],
            "unknown profile 'huge'; valid profiles: ['quick', 'full']",
        ),
        (
            ["run", "seifert", "-p", "n_sampels=3"],
            "unknown parameter(s) ['n_sampels'] for chapter 'seifert'; valid parameters:",
        ),
        (
            ["run", "seifert", "-p", "seed=abc"],
            "parameter 'seed': must be an int; got 'abc' (str)",
        ),
        (["run", "seifert", "-p", "seed=-4"], "parameter 'seed': below the minimum 0"),
        (["run", "seifert", "-p", "seed"], "-p expects NAME=VALUE"),
        (["build", "-p", "device=tpu"], "parameter 'device': not an allowed value"),
    ],
)
def test_cli_refuses_bad_input_before_starting_a_kernel(args, message, tmp_path):
    res = (
        thermo_nb(*args, "--out", str(tmp_path))
        if args[0] == "run"
        else thermo_nb(*args)
    )
    assert res.returncode == 2
    assert message in res.stderr
    assert not list(tmp_path.glob("*.ipynb")), "no notebook was executed"


def papermill(nb, out, *params):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(nb),
            str(out),
            "-k",
            "python3",
            "--cwd",
            str(ROOT / "book"),
            *params,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("chapter", CHAPTER_MODULES)
def test_plain_papermill_fails_on_wrong_type_and_out_of_range(chapter, tmp_path):
    nb = ROOT / "book" / f"{chapter}.ipynb"
    res = papermill(
        nb,
        tmp_path / "wrong_type.ipynb",
        "-p",
        "seed",
        "1.5",
        "-p",
        "output_dir",
        str(tmp_path / "o1"),
    )
    assert res.returncode != 0
    assert (
        "ParameterError: parameter 'seed': must be an int; got 1.5 (float)"
        in res.stderr
    )
    res = papermill(
        nb,
        tmp_path / "range.ipynb",
        "-p",
        "seed",
        "-3",
        "-p",
        "output_dir",
        str(tmp_path / "o2"),
    )
    assert res.returncode != 0
    assert "ParameterError: parameter 'seed': below the minimum 0" in res.stderr
    res = papermill(
        nb,
        tmp_path / "profile.ipynb",
        "-p",
        "profile",
        "medium",
        "-p",
        "output_dir",
        str(tmp_path / "o3"),
    )
    assert res.returncode != 0
    assert "parameter 'profile': not an allowed value; got 'medium'" in res.stderr


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="a GPU is present: device=cuda is valid"
)
def test_cuda_without_a_gpu_is_refused_before_a_kernel_starts(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    res = thermo_nb("run", "seifert", "-p", "device=cuda", "--out", str(tmp_path))
    assert res.returncode == 2
    assert (
        "parameter 'device': device='cuda' was requested but no CUDA GPU" in res.stderr
    )
    assert not (tmp_path / "seifert.ipynb").exists(), "no kernel was started"


def _repo_copy_with_failing_cell(tmp_path: Path) -> Path:
    """A copy of the book whose Seifert chapter raises in its third code cell."""
    import json

    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text((ROOT / "_toc.yml").read_text())
    nb = json.loads((ROOT / "book" / "seifert.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[2]["source"] = ['raise RuntimeError("boom: a cell failed")\n']
    (root / "book" / "seifert.ipynb").write_text(json.dumps(nb))
    return root


def test_failing_chapter_exits_nonzero_prints_the_cell_error_and_keeps_the_notebook(
    tmp_path,
):
    root = _repo_copy_with_failing_cell(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", "run", "seifert", "--out", "out"],
        cwd=root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "chapter 'seifert' failed (papermill exit" in res.stderr
    assert "RuntimeError: boom: a cell failed" in res.stderr
    assert 'raise RuntimeError("boom' in res.stderr  # the failing cell's source
    assert "kernel did not start" not in res.stdout, "a cell error is not retried"
    assert (root / "out" / "seifert.ipynb").exists(), "the executed notebook is kept"


def test_strip_removes_outputs_and_execution_counts(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "1 + 1",
        execution_count=3,
        outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"})],
    )
    nb.cells = [cell]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    res = thermo_nb("strip", str(path))
    assert res.returncode == 0 and "stripped" in res.stdout
    clean = nbformat.read(path, as_version=4).cells[0]
    assert clean.outputs == [] and clean.execution_count is None
    assert "clean" in thermo_nb("strip", str(path)).stdout


# ------------------------------------------------------------ hardening (issue 15)
# Every case below is refused before any kernel starts (exit 2, message on stderr).

OLD = ["seifert", "dimensional_analysis"]


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["run", "seifert", "--profile", "quick", "-p", "profile=full"],
            "conflicting profiles: --profile quick, -p profile=full",
        ),
        (["run", "seifert", "-p", "profile=medium"], "unknown profile 'medium'"),
        (
            ["run", "seifert", "-p", "output_dir="],
            "parameter 'output_dir': a value is required",
        ),
        (
            ["run", "seifert", "-p", "output_dir=''"],
            "parameter 'output_dir': must name a folder",
        ),
        (
            ["run", "seifert", "-p", "output_dir=/proc/no/such/place"],
            "parameter 'output_dir': cannot create the folder",
        ),
        (
            ["run", "seifert", "--out", "/proc/no/such/place"],
            "parameter '--out': cannot create the folder",
        ),
        (
            ["run", "seifert", "-p", "data_root=/no/such/mnist"],
            "parameter 'data_root': MNIST data_root '/no/such/mnist' does not exist",
        ),
        (
            ["run", "sgd_heat_bath", "-p", "data_root=/no/such/mnist"],
            "parameter 'data_root': MNIST data_root '/no/such/mnist' does not exist",
        ),
        (
            ["run", "free_energy", "-p", "data_root=/no/such/cifar"],
            "parameter 'data_root': CIFAR-10 not found under data_root='/no/such/cifar'",
        ),
        (
            ["run", "ideal_gas", "-p", "data_root=/no/such/cifar"],
            "parameter 'data_root': CIFAR-10 not found under data_root='/no/such/cifar'",
        ),
        (
            ["run", "dimensional_analysis", "-p", "data_path=/no/such.csv"],
            "parameter 'data_path': no such file: /no/such.csv",
        ),
        (
            ["run", "seifert", "-p", "n_trajectories=10000000"],
            "set by parameter(s) 'n_trajectories', 'dt'",
        ),
        (
            ["run", "dimensional_analysis", "-p", "lm_widths=[8192]"],
            "set by parameter(s) 'lm_widths'",
        ),
        (
            ["run", "seifert", "-p", "n_replicas=1000000000000"],
            "parameter 'n_replicas': above the maximum",
        ),
        (["run", "seifert", "-p", "nochapter.seed=1"], "unknown chapter 'nochapter'"),
        (
            ["run", "seifert", "-p", "dimensional_analysis.hidden=8"],
            "chapter 'dimensional_analysis' is not among those being run",
        ),
        (
            ["run", "seifert", "-p", "seifert.n_sampels=3"],
            "unknown parameter(s) ['n_sampels'] for chapter 'seifert'",
        ),
    ],
)
def test_bad_input_is_refused_before_any_compute(args, message, tmp_path):
    res = thermo_nb(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_an_empty_data_root_folder_names_the_missing_files(tmp_path):
    res = thermo_nb("run", "seifert", "-p", f"data_root={tmp_path}")
    assert res.returncode == 2
    assert "lacks ['train-images-idx3-ubyte'" in res.stderr


def test_full_profile_on_a_cpu_needs_to_be_asked_for():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    res = thermo_nb("run", "seifert", "--profile", "full")
    assert res.returncode == 2
    for text in ("planned sizes:", "estimated peak memory", "estimated time on 2 CPU",
                 "--allow-cpu-full"):  # fmt: skip
        assert text in res.stderr, res.stderr


def test_plain_papermill_full_profile_on_a_cpu_warns(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    import thermo_nb as tnb

    with pytest.warns(UserWarning, match="profile 'full' is the papers' scale"):
        tnb.validate_parameters(
            "dimensional_analysis", {"profile": "full", "output_dir": str(tmp_path)}
        )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit CPU request is not warned about
        tnb.validate_parameters(
            "dimensional_analysis",
            {"profile": "full", "device": "cpu", "output_dir": str(tmp_path)},
        )


def test_chapter_scoped_parameters_and_relative_output_dir(tmp_path, monkeypatch):
    from thermo_nb.pipeline.cli import build_jobs

    monkeypatch.chdir(tmp_path)
    jobs = build_jobs(
        OLD,
        None,
        {"seed": 3, "seifert.n_replicas": 16, "output_dir": "mine"},
        tmp_path / "out",
        ROOT,
    )
    seifert, da = jobs
    assert seifert.params["n_replicas"] == 16 and "n_replicas" not in da.params
    assert seifert.params["seed"] == da.params["seed"] == 3
    # relative to where the command ran, not to book/
    assert seifert.output_dir == (tmp_path / "mine").resolve()


def test_a_kernel_that_dies_is_reported_as_such_and_both_logs_kept(tmp_path):
    import json

    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text((ROOT / "_toc.yml").read_text())
    nb = json.loads((ROOT / "book" / "seifert.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[2]["source"] = [
        "import os, signal\n",
        "os.kill(os.getpid(), signal.SIGKILL)\n",
    ]
    (root / "book" / "seifert.ipynb").write_text(json.dumps(nb))
    res = subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", "run", "seifert", "--out", "o"],
        cwd=root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 1
    assert re.search(r"the kernel died after \d+ executed cell", res.stderr), res.stderr
    assert "did not start" not in res.stdout
    assert (root / "o" / "seifert.log").exists()


def test_every_size_parameter_has_documented_bounds():
    from thermo_nb.pipeline.registry import all_chapters

    for spec in all_chapters():
        for p in spec.params:
            if p.type in (int, float, list) and p.choices is None:
                assert p.low is not None and p.high is not None, (
                    f"{spec.name}.{p.name} needs low and high bounds"
                )
