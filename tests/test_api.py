"""The public API: every exported name resolves, and estimators are documented numpy-style."""

import importlib
import inspect

import pytest

import thermo_nb

NAMES = sorted(thermo_nb._EXPORTS)


@pytest.mark.parametrize("name", NAMES)
def test_public_name_resolves_to_a_documented_object(name):
    obj = getattr(thermo_nb, name)
    assert obj is getattr(
        importlib.import_module(thermo_nb._EXPORTS[name], "thermo_nb"), name
    )
    assert inspect.getdoc(obj), f"{name} has a docstring"


ESTIMATORS = [
    n
    for n in NAMES
    if thermo_nb._EXPORTS[n].startswith(".estimators")
    and inspect.isfunction(getattr(thermo_nb, n))
]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_docstring_has_parameters_returns_and_its_source(name):
    doc = inspect.getdoc(getattr(thermo_nb, name))
    assert "Parameters\n----------" in doc, name
    assert "Returns\n-------" in doc, name
    assert ("References\n----------" in doc) or ("Notes\n-----" in doc), name


def test_import_is_lazy_and_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = thermo_nb.nope
    assert set(dir(thermo_nb)) >= set(NAMES)
