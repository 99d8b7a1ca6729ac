"""Parameter validation: types, ranges, choices, profile defaults, and the notebook contract."""

import ast
import json
import re
from pathlib import Path

import pytest

from thermo_nb.chapters import CHAPTER_MODULES
from thermo_nb.pipeline.registry import all_chapters, get_chapter
from thermo_nb.pipeline.validation import (
    Param,
    ParameterError,
    check_values,
    validate_parameters,
)

ROOT = Path(__file__).resolve().parent.parent


def test_profile_defaults_fill_parameters_left_at_none():
    for spec in all_chapters():
        for profile in ("quick", "full"):
            values = check_values(spec.name, {"profile": profile})
            for p in spec.params:
                if p.profiles:
                    assert values[p.name] == p.profiles[profile], (spec.name, p.name)


def test_explicit_value_overrides_profile_default():
    spec = get_chapter("seifert")
    p = next(p for p in spec.params if p.profiles and p.type is int)
    v = check_values("seifert", {"profile": "quick", p.name: p.profiles["quick"] + 1})
    assert v[p.name] == p.profiles["quick"] + 1


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("seed", 1.5, r"parameter 'seed': must be an int; got 1.5 \(float\)"),
        ("seed", "3", r"parameter 'seed': must be an int; got '3' \(str\)"),
        ("seed", True, r"parameter 'seed': must be an int"),
        ("seed", -1, r"parameter 'seed': below the minimum 0"),
        (
            "profile",
            "medium",
            r"parameter 'profile': not an allowed value.*\['quick', 'full'\]",
        ),
        (
            "device",
            "tpu",
            r"parameter 'device': not an allowed value.*\['auto', 'cpu', 'cuda'\]",
        ),
        ("output_dir", 3, r"parameter 'output_dir': must be a string"),
    ],
)
def test_bad_values_are_refused_with_parameter_name_and_allowed_values(
    name, value, message
):
    with pytest.raises(ParameterError, match=message):
        check_values("seifert", {name: value})


def test_unknown_names_refused_in_strict_mode_with_the_valid_list():
    with pytest.raises(
        ParameterError, match=r"unknown parameter\(s\) \['n_sampels'\].*valid"
    ):
        check_values("seifert", {"n_sampels": 3}, strict=True)
    # notebook mode (globals()) ignores unrelated names
    check_values("seifert", {"np": object(), "profile": "quick"})


def test_unknown_chapter_lists_the_valid_chapters():
    with pytest.raises(ParameterError, match=r"unknown chapter 'nope'; valid chapters"):
        get_chapter("nope")


def test_param_types():
    assert Param("x", float, "h").check(2) == 2.0
    with pytest.raises(ParameterError, match="must be finite"):
        Param("x", float, "h").check(float("nan"))
    assert Param("g", list, "h", low=0).check([1, 2.5]) == [1, 2.5]
    with pytest.raises(ParameterError, match="below the minimum"):
        Param("g", list, "h", low=0).check([1, -2])
    with pytest.raises(ParameterError, match="must be a bool"):
        Param("b", bool, "h").check(1)
    assert Param("d", str, "h", nullable=True).check(None) is None


def test_validate_parameters_prepares_the_run(tmp_path):
    cfg = validate_parameters(
        "seifert", {"output_dir": str(tmp_path / "out"), "seed": 5}
    )
    assert cfg.seed == 5 and cfg.output_path.is_dir()
    assert cfg.torch_device.type in ("cpu", "cuda")
    assert cfg.cache.root == tmp_path / "out" / "cache"
    assert set(cfg) == set(get_chapter("seifert").names)


def _parameters_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return cells, next(
        c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])
    )


@pytest.mark.parametrize("chapter", CHAPTER_MODULES)
def test_notebook_parameters_cell_matches_the_chapter_spec(chapter):
    spec = get_chapter(chapter)
    cells, pcell = _parameters_cell(ROOT / spec.notebook)
    assert cells[0] is pcell, "the parameters cell is the first code cell"
    src = "".join(pcell["source"])
    tree = ast.parse(src)
    names = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "typing":
            continue  # `from typing import Optional` for papermill-parsable annotations
        assert isinstance(node, ast.AnnAssign), (
            f"every parameter is annotated: {ast.unparse(node)}"
        )
        names.append(node.target.id)
        line = src.splitlines()[node.lineno - 1]
        assert "#" in line, f"parameter {node.target.id} has a one-line comment"
    assert sorted(names) == sorted(spec.names)
    validation = "".join(cells[1]["source"])
    assert f'validate_parameters("{chapter}", globals())' in validation


@pytest.mark.parametrize("chapter", CHAPTER_MODULES)
def test_notebooks_are_stored_without_outputs(chapter):
    nb = json.loads((ROOT / get_chapter(chapter).notebook).read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None


@pytest.mark.parametrize("chapter", CHAPTER_MODULES)
def test_papermill_parses_every_parameter_with_its_comment(chapter):
    """`papermill --help-notebook` lists every parameter with its help text, without
    "Unable to parse" warnings, and passing a parameter whose default is None raises no
    false "unknown parameter" warning."""
    import subprocess
    import sys

    spec = get_chapter(chapter)
    nb = str(ROOT / spec.notebook)
    res = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", nb],
        capture_output=True, text=True,
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Unable to parse" not in out, out
    cell = "".join(_parameters_cell(ROOT / spec.notebook)[1]["source"])
    for p in spec.params:
        assert re.search(rf"^  {p.name}: ", out, flags=re.M), (
            f"{p.name} missing:\n{out}"
        )
        comment = [ln for ln in cell.splitlines() if ln.startswith(f"{p.name}:")][0]
        help_text = comment.split("#", 1)[1].strip()
        assert " ".join(help_text.split()) in " ".join(out.split()), p.name
    nullable = [p.name for p in spec.params if p.default is None][:3]
    args = [x for name in nullable for x in ("-p", name, "null")]
    res = subprocess.run(
        [sys.executable, "-m", "papermill", nb, "/dev/null", "--prepare-only", *args],
        capture_output=True, text=True, cwd=ROOT / "book",
    )  # fmt: skip
    assert "unknown parameter" not in (res.stdout + res.stderr), res.stderr


@pytest.mark.parametrize(
    "text,value",
    [("1e-3", 1e-3), ("2E5", 2e5), ("0.05", 0.05), ("8", 8), ("[32, 64]", [32, 64]),
     ("null", None), ("quick", "quick"), ("nan", "nan")],
)  # fmt: skip
def test_cli_values_parse_like_papermill_and_exponents_are_numbers(text, value):
    from thermo_nb.pipeline.params import parse_cli_value

    assert parse_cli_value(text) == value
