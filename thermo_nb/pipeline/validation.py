"""Validating a chapter's parameters before any compute, and preparing its run.

A chapter notebook's second code cell calls

>>> cfg = validate_parameters("seifert", globals())          # doctest: +SKIP

which checks every parameter against the chapter's specification (looked up by name in
:mod:`thermo_nb.pipeline.registry`), fills the profile defaults, resolves the device, seeds
every RNG, creates ``output_dir`` and returns a :class:`Config`.  The old module path
``thermo_nb.params`` resolves here, so every name it used to hold is re-exported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .params import (  # noqa: F401  (re-exported for the old path thermo_nb.params)
    PROFILES,
    ChapterSpec,
    Param,
    ParameterError,
    common_params,
    parse_cli_value,
)
from .registry import get_chapter


class Config(dict):
    """Validated parameters with attribute access (``cfg.n_replicas``) plus runtime objects:
    ``cfg.torch_device`` (a ``torch.device``), ``cfg.rng`` (a numpy ``Generator`` seeded with
    ``seed``), ``cfg.cache`` (a :class:`~thermo_nb.runtime.ResultCache` under
    ``output_dir/cache``) and ``cfg.output_path`` (a ``Path``).

    Only the validated parameters are dictionary items (so ``dict(cfg)`` is a cache key).
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def check_values(
    chapter: str, values: Mapping[str, Any], *, strict: bool = False
) -> dict:
    """Validate ``values`` against the chapter's specification (no side effects).

    Parameters
    ----------
    chapter : str
        A chapter name from ``thermo-nb list``.
    values : mapping
        Parameter values, e.g. the notebook's ``globals()``; names not in the specification
        are ignored unless ``strict`` (the command line uses ``strict=True``).
    strict : bool
        Refuse names that are not parameters of the chapter.

    Returns
    -------
    dict
        Every parameter of the chapter, profile defaults filled in.
    """
    spec = get_chapter(chapter)
    if strict:
        unknown = sorted(set(values) - set(spec.names))
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {unknown} for chapter {chapter!r}; valid parameters: "
                f"{sorted(spec.names)}"
            )
    profile = spec.param("profile").check(values.get("profile", "quick"))
    out = {}
    for p in spec.params:
        value = values.get(p.name, p.default)
        if value is None and p.profiles:
            value = p.profiles[profile]
        out[p.name] = p.check(value)
    return out


def writable_folder(path: "str | os.PathLike", name: str) -> Path:
    """Create ``path`` (and parents) if needed and check it can be written to.

    Raises
    ------
    ParameterError
        Naming the parameter ``name`` and why the folder cannot be used.
    """
    out = Path(path).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ParameterError(
            f"parameter {name!r}: cannot create the folder {str(path)!r} "
            f"({e.strerror or e})"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ParameterError(
            f"parameter {name!r}: the folder {str(path)!r} is not writable"
        )
    return out


def validate_parameters(chapter: str, values: Mapping[str, Any]) -> Config:
    """Validate a chapter's parameters and prepare its run.

    Checks every parameter (type, range, choices), fills the profile defaults, resolves the
    device (``device="cuda"`` without a GPU is an error), seeds Python, numpy and torch,
    creates ``output_dir`` and sets the book's plotting style.

    Raises
    ------
    ParameterError
        Naming the parameter, the value and the allowed values.
    """
    from ..runtime import DeviceError, ResultCache, resolve_device, seed_everything
    from .planning import check_plan

    cfg = Config(check_values(chapter, values))
    try:
        torch_device = resolve_device(cfg["device"])
    except DeviceError as e:
        raise ParameterError(f"parameter 'device': {e}") from None
    check_plan(get_chapter(chapter), cfg, torch_device.type, interactive=False)
    out = writable_folder(cfg["output_dir"], "output_dir")
    object.__setattr__(cfg, "torch_device", torch_device)
    object.__setattr__(cfg, "output_path", out)
    object.__setattr__(cfg, "rng", seed_everything(cfg["seed"]))
    object.__setattr__(cfg, "cache", ResultCache(out / "cache"))
    object.__setattr__(cfg, "chapter", chapter)
    try:
        from ..plotting import set_book_style

        set_book_style()
    except ImportError:  # pragma: no cover - matplotlib is a hard dependency
        pass
    return cfg
