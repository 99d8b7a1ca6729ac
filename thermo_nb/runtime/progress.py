"""Progress bars for long loops (tqdm), silent inside ``thermo-nb build``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    disable: bool | None = None,
    **kwargs,
):
    """A tqdm progress bar that behaves in notebooks, terminals and CI logs.

    Uses ``tqdm.auto`` (a widget in Jupyter) when ``ipywidgets`` is installed and plain
    text bars otherwise.  Disabled when ``THERMO_NB_PROGRESS=0`` (``thermo-nb build`` sets
    it, so the rendered book carries no progress-bar residue).  Bars are refreshed at most
    every 2 s so executed notebooks stay small.
    """
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm

    if disable is None:
        disable = os.environ.get("THERMO_NB_PROGRESS", "1") == "0"
    kwargs.setdefault("mininterval", 2.0)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, total=total, desc=desc, disable=disable, **kwargs)
