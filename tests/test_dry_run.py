"""``thermo-nb run/build --dry-run`` prints each chapter's planned sizes, memory and run
time, and starts no kernel."""

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import pytest

from thermo_nb.pipeline import registry
from thermo_nb.pipeline.dryrun import dry_run
from thermo_nb.pipeline.params import ParameterError

ROOT = Path(__file__).resolve().parent.parent


def thermo_nb(*args):
    return subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_dry_run_prints_the_plan_per_chapter_and_runs_nothing(tmp_path):
    chapters = ["seifert", "dimensional_analysis"]
    res = thermo_nb(
        "run", *chapters, "--profile", "full", "--dry-run", "--out", str(tmp_path)
    )
    assert res.returncode == 0, res.stderr
    for chapter in chapters:
        section = res.stdout.split(f"{chapter} (profile=full, device=")[1]
        for what in ("planned sizes:", "estimated peak memory:", "estimated time"):
            assert what in section.split("\n\n")[0]
    assert "n_replicas=1024" in res.stdout  # seifert's full size
    assert "lm_widths=[64, 128, 256, 512, 1024]" in res.stdout
    assert "memory check:" in res.stdout
    assert res.stdout.rstrip().endswith("dry run: no kernel was started")
    assert not list(tmp_path.iterdir()), "nothing was written"


def test_build_dry_run_covers_every_chapter_and_honours_parameters():
    from thermo_nb.chapters import CHAPTER_MODULES

    res = thermo_nb("build", "--dry-run", "-p", "seifert.n_replicas=8")
    assert res.returncode == 0, res.stderr
    for chapter in CHAPTER_MODULES:
        assert f"{chapter} (profile=quick, device=" in res.stdout
    assert "n_replicas=8," in res.stdout


def test_dry_run_refuses_bad_parameters():
    res = thermo_nb("run", "seifert", "--dry-run", "-p", "n_replicas=2")
    assert res.returncode == 2
    assert "parameter 'n_replicas': below the minimum 8" in res.stderr


def test_a_chapter_without_a_plan_says_no_estimate(monkeypatch):
    spec = dataclasses.replace(registry.get_chapter("seifert"), plan=None)
    monkeypatch.setattr(registry, "get_chapter", lambda name: spec)
    out = io.StringIO()
    assert dry_run(["seifert"], "quick", {}, out=out) == 0
    assert "no estimate" in out.getvalue()
    with pytest.raises(ParameterError, match="unknown profile"):
        dry_run(["seifert"], "huge", {})
