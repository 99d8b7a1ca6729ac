"""Look up chapter specifications by name (the modules of :mod:`thermo_nb.chapters`)."""

from __future__ import annotations

import importlib

from ..chapters import CHAPTER_MODULES
from .params import ChapterSpec, ParameterError


def all_chapters() -> list[ChapterSpec]:
    """Every chapter's specification, in reading order."""
    return [get_chapter(name) for name in CHAPTER_MODULES]


def get_chapter(name: str) -> ChapterSpec:
    """The specification of chapter ``name``; unknown names list the valid ones."""
    if name not in CHAPTER_MODULES:
        raise ParameterError(
            f"unknown chapter {name!r}; valid chapters: {list(CHAPTER_MODULES)}"
        )
    return importlib.import_module(f"thermo_nb.chapters.{name}").SPEC
