"""The package layout: folders are layers, lower layers never import higher ones, there
are no import cycles between modules, and the old flat module paths keep working."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import thermo_nb
from thermo_nb._compat import MOVED_MODULES

PKG = Path(thermo_nb.__file__).resolve().parent
ROOT = PKG.parent

#: layer of each top-level part; a module may import only parts of a lower or equal layer
LAYERS = {
    "_validation": 0,
    "runtime": 0,
    "models": 1,
    "neighbors": 1,
    "data": 1,
    "estimators": 2,
    "dynamics": 2,
    "training": 2,
    "theory": 2,
    "analysis": 3,
    "plotting": 3,
    "chapters": 4,
    "pipeline": 5,
}
#: the exceptions: a chapter declares its SPEC (and its RunPlan) with pipeline types
ALLOWED_UP = {
    ("chapters", "thermo_nb.pipeline.params"),
    ("chapters", "thermo_nb.pipeline.planning"),
}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of the thermo_nb modules a module imports (static, any depth)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("thermo_nb")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("thermo_nb"):
                out.add(mod)
    return out


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = dict(_modules())


def test_every_top_level_part_has_a_layer():
    parts = {_part(m) for m in MODULES} - {None, "_compat"}
    assert parts <= set(LAYERS), (
        f"new top-level parts need a layer: {parts - set(LAYERS)}"
    )
    top_files = sorted(p.name for p in PKG.glob("*.py"))
    assert top_files == ["__init__.py", "_compat.py", "_validation.py"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) in LAYERS))
def test_lower_layers_never_import_higher_ones(module):
    mine = LAYERS[_part(module)]
    for imported in _imports(module, MODULES[module]):
        other = _part(imported)
        if other is None or other not in LAYERS:
            continue
        if (_part(module), imported) in ALLOWED_UP:
            continue
        assert LAYERS[other] <= mine, (
            f"{module} (layer {mine}) imports {imported} (layer {LAYERS[other]})"
        )


def test_no_import_cycles_between_modules():
    graph = {}
    for name, path in MODULES.items():
        targets = set()
        for imp in _imports(name, path):
            # "from .pkg import name" may name a submodule or an attribute
            while imp and imp not in MODULES:
                imp = imp.rpartition(".")[0]
            if imp and imp != name and not name.startswith(imp + "."):
                targets.add(imp)
        graph[name] = targets
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        # a package __init__ re-exporting its submodules is not a cycle with them
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_old_module_paths_still_import(old):
    code = (
        "import importlib, thermo_nb\n"
        f"m = importlib.import_module({old!r})\n"
        f"assert m is importlib.import_module({MOVED_MODULES[old]!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_old_import_statements_of_public_names_work():
    from thermo_nb.dynamics.ensemble import EnsembleTrainer
    from thermo_nb.params import validate_parameters
    from thermo_nb.scaling import chinchilla_loss

    from thermo_nb.models import MLP, flatten_params
    from thermo_nb.runtime import ResultCache, progress

    assert EnsembleTrainer is thermo_nb.EnsembleTrainer
    assert chinchilla_loss is thermo_nb.chinchilla_loss
    assert validate_parameters is thermo_nb.validate_parameters
    assert (MLP, flatten_params, ResultCache, progress) == (
        thermo_nb.MLP,
        thermo_nb.flatten_params,
        thermo_nb.ResultCache,
        thermo_nb.progress,
    )
    assert importlib.import_module("thermo_nb.cli").main is not None
