"""The book's chapters, in reading order: one module per chapter.

Each module defines ``SPEC``, a :class:`~thermo_nb.pipeline.params.ChapterSpec` with the
chapter's parameters and their profile defaults (the single place where a chapter's sizes,
grids and iteration counts are written down), and may hold the chapter's verdict rules and
glue code.  A new chapter adds its module name to ``CHAPTER_MODULES`` and its notebook to
``_toc.yml``; :mod:`thermo_nb.pipeline.registry` loads the specifications by name.
"""

CHAPTER_MODULES = (
    "seifert",
    "sgd_heat_bath",
    "learning_dissipation",
    "free_energy",
    "ideal_gas",
    "dimensional_analysis",
)
