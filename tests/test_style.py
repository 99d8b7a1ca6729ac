"""Style that keeps the code readable as more hands touch it: ruff's linter and
formatter over the package, tests, benchmarks and the notebooks' code cells, and code
lines of a rendered chapter that fit its code cell (88 columns)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = [
    "thermo_nb",
    "tests",
    "benchmarks",
    *sorted(map(str, Path(ROOT, "book").glob("*.ipynb"))),
]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _ruff(*args):
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which(
        "ruff"
    )
    if exe is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_passes():
    res = _ruff("check", "--no-cache", *TARGETS)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_ruff_format_is_clean():
    res = _ruff("format", "--check", "--no-cache", *TARGETS)
    assert res.returncode == 0, (
        "run `ruff format thermo_nb tests benchmarks book`:\n" + res.stdout[-4000:]
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_code_lines_fit_the_page(notebook):
    long = []
    for i, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            if len(line) > 88:
                long.append(f"cell {i}: {line}")
    assert not long, "code lines over 88 characters:\n" + "\n".join(long)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_figure_and_scorecard_cells_are_collapsed(notebook):
    """A cell whose only job is a figure (it ends in ``plt.show()``) or the scorecard
    (it calls ``sc.show``) is tagged ``hide-input``: the reader sees the result and can
    open the code."""
    bare = []
    for i, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        src = "".join(cell["source"]).strip()
        if cell["cell_type"] != "code":
            continue
        if src.endswith("plt.show()") or "sc.show(" in src:
            if "hide-input" not in cell["metadata"].get("tags", []):
                bare.append(f"cell {i}: {src.splitlines()[0]}")
    assert not bare, "figure/scorecard cells without hide-input:\n" + "\n".join(bare)
