"""Old module paths of the flat layout (before the package was split into folders) keep
working: ``import thermo_nb.scaling`` returns :mod:`thermo_nb.theory.scaling`, and so on.

A meta-path finder maps each old name to the module that now holds the code; the module
object is the same one (no copy), so ``thermo_nb.scaling is thermo_nb.theory.scaling``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old module path -> current module path
MOVED_MODULES: dict[str, str] = {
    "thermo_nb.cpu_allocator": "thermo_nb.runtime.cpu_allocator",
    "thermo_nb.transformer": "thermo_nb.models.transformer",
    "thermo_nb.dynamics.ensemble": "thermo_nb.training.ensemble",
    "thermo_nb.dynamics.ensemble_fused": "thermo_nb.training.ensemble_fused",
    "thermo_nb.scaling": "thermo_nb.theory.scaling",
    "thermo_nb.energy": "thermo_nb.theory.energy",
    "thermo_nb.flops": "thermo_nb.theory.flops",
    "thermo_nb.fits": "thermo_nb.analysis.fits",
    "thermo_nb.batch_size": "thermo_nb.analysis.batch_size",
    "thermo_nb.bitflips": "thermo_nb.analysis.bitflips",
    "thermo_nb.params": "thermo_nb.pipeline.validation",
    "thermo_nb.report": "thermo_nb.pipeline.report",
    "thermo_nb.cli": "thermo_nb.pipeline.cli",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve an old module path to the module that replaced it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module):  # already executed under its current name
        pass


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
