"""Chapter parameter specifications: :class:`Param`, :class:`ChapterSpec`, the parameters
every chapter has (:func:`common_params`) and :class:`ParameterError`.

The specifications live in ``thermo_nb/chapters/<chapter>.py`` (one module per chapter,
the single place where profile defaults are written down); they import only this module.
Checking values against a specification, and preparing a notebook's run, is
:mod:`thermo_nb.pipeline.validation`; the command line uses the same specifications to
refuse unknown names and bad values before it starts a kernel.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILES = ("quick", "full")
_MISSING = object()


class ParameterError(ValueError):
    """A chapter parameter has the wrong type, range or value. The message names it."""


@dataclass(frozen=True)
class Param:
    """Specification of one chapter parameter.

    Parameters
    ----------
    name : str
    type : type
        One of ``int``, ``float``, ``str``, ``bool``, ``list`` (a list of numbers).
    help : str
        One line, shown by ``thermo-nb list`` and in error messages.
    default : any
        The value in the notebook's parameters cell. ``None`` means "take the profile's
        value from ``profiles``".
    choices : tuple, optional
        Allowed values.
    low, high : float, optional
        Inclusive bounds (for lists: bounds of every element).
    profiles : dict, optional
        ``{"quick": value, "full": value}`` used when the value is ``None``.
    nullable : bool
        ``None`` is a legal final value (e.g. an optional ``data_root``).
    validator : callable, optional
        ``validator(value)`` for checks beyond type and range (a folder exists and holds
        the expected files, a string is not empty); it raises ``ValueError`` or
        ``OSError`` with the reason, reported as a :class:`ParameterError`.
    """

    name: str
    type: type
    help: str
    default: Any = None
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    profiles: Mapping[str, Any] = field(default_factory=dict)
    nullable: bool = False
    validator: Callable[[Any], None] | None = None

    def allowed(self) -> str:
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        parts = [self.type.__name__ if self.type is not list else "list of numbers"]
        if self.low is not None and self.high is not None:
            parts.append(f"in [{self.low}, {self.high}]")
        elif self.low is not None:
            parts.append(f">= {self.low}")
        elif self.high is not None:
            parts.append(f"<= {self.high}")
        if self.nullable:
            parts.append("or None")
        return " ".join(parts)

    def check(self, value: Any) -> Any:
        """Return the value converted to the parameter's type, or raise ParameterError."""

        def fail(why: str):
            raise ParameterError(
                f"parameter {self.name!r}: {why}; got {value!r} ({type(value).__name__}). "
                f"Allowed: {self.allowed()}. ({self.help})"
            )

        if value is None:
            if self.nullable:
                return None
            fail("a value is required")
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                fail("must be a bool (True/False)")
        elif t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    fail("must be an int")
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail("must be a number")
            value = float(value)
            if not math.isfinite(value):
                fail("must be finite")
        elif t is str:
            if not isinstance(value, str):
                fail("must be a string")
        elif t is list:
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                fail("must be a list of numbers")
            value = list(value)
            if not value:
                fail("must not be empty")
        else:  # pragma: no cover - spec error
            raise TypeError(f"unsupported parameter type {t!r} for {self.name}")
        if self.choices is not None and value not in self.choices:
            fail("not an allowed value")
        for v in value if t is list else [value]:
            if self.low is not None and v < self.low:
                fail(f"below the minimum {self.low}")
            if self.high is not None and v > self.high:
                fail(f"above the maximum {self.high}")
        if self.validator is not None:
            try:
                self.validator(value)
            except (ValueError, OSError) as e:
                fail(str(e))
        return value


def common_params(chapter: str) -> list[Param]:
    """The parameters every chapter has (DESIGN.md): profile, device, seed, output_dir."""
    return [
        Param(
            "profile",
            str,
            '"quick" (2 CPU cores, minutes) or "full" (paper scale, GPU)',
            default="quick",
            choices=PROFILES,
        ),
        Param(
            "device",
            str,
            '"auto" (CUDA when present), "cpu" or "cuda"',
            default="auto",
            choices=("auto", "cpu", "cuda"),
        ),
        Param(
            "seed",
            int,
            "RNG seed; the same seed gives bit-identical CPU results",
            default=0,
            low=0,
            high=2**32 - 1,
        ),
        Param(
            "output_dir",
            str,
            "folder for scorecard.json, figures and the result cache",
            default=f"_output/{chapter}",
            validator=_not_blank,
        ),
    ]


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValueError("must name a folder (an empty string would write into book/)")


def existing_file(value: str) -> None:
    """Validator: ``value`` is a readable file."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {value}")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"cannot read {value}")


@dataclass(frozen=True)
class ChapterSpec:
    """What the command line and the validator know about one chapter."""

    name: str
    title: str
    summary: str
    params: Sequence[Param]
    plan: Callable[[dict], Any] | None = None  # values -> planning.RunPlan

    @property
    def notebook(self) -> str:
        """Path of the notebook relative to the repository root."""
        return f"book/{self.name}.ipynb"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(
            f"unknown parameter {name!r} for chapter {self.name!r}; valid parameters: "
            f"{sorted(p.name for p in self.params)}"
        )

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]


def parse_cli_value(text: str) -> Any:
    """Parse ``VALUE`` of ``-p NAME=VALUE`` the way papermill's ``-p`` does (YAML scalars),
    and read numbers YAML 1.1 leaves as text (``1e-3``, ``.5e2``) as floats."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if value.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity"):
            return number
    return value
