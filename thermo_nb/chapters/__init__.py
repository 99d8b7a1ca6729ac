"""Registry of the book's chapters, in reading order.

Each chapter has a module here defining ``SPEC``, a :class:`~thermo_nb.params.ChapterSpec`
with its parameters and their profile defaults: the single place where a chapter's sizes,
grids and iteration counts are written down.  A new chapter adds its module name to
``CHAPTER_MODULES`` and its notebook to ``_toc.yml``.
"""
from __future__ import annotations

import importlib

from ..params import ChapterSpec, ParameterError

CHAPTER_MODULES = ("seifert", "dimensional_analysis")


def all_chapters() -> list[ChapterSpec]:
    """Every chapter's specification, in reading order."""
    return [importlib.import_module(f"{__name__}.{m}").SPEC for m in CHAPTER_MODULES]


def get_chapter(name: str) -> ChapterSpec:
    """The specification of chapter ``name``; unknown names list the valid ones."""
    if name not in CHAPTER_MODULES:
        raise ParameterError(
            f"unknown chapter {name!r}; valid chapters: {list(CHAPTER_MODULES)}")
    return importlib.import_module(f"{__name__}.{name}").SPEC
