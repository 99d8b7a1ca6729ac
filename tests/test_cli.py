"""The thermo-nb command line and plain papermill refuse bad parameters with clear messages."""

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
def test_failing_chapter_exits_nonzero_prints_the_cell_error_and_keeps_the_notebook(
    tmp_path,
):
    res = thermo_nb("run", "seifert", "-p", "device=cuda", "--out", str(tmp_path))
    assert res.returncode == 1
    assert "chapter 'seifert' failed" in res.stderr
    assert (
        "ParameterError: parameter 'device': device='cuda' was requested but no CUDA GPU"
        in res.stderr
    )
    assert "validate_parameters(" in res.stderr  # the failing cell's source is shown
    assert (tmp_path / "seifert.ipynb").exists(), "the executed notebook is kept"


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
