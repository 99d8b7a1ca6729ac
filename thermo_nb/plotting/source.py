"""Showing the package's code in a chapter (one helper instead of ad-hoc
``inspect.getsource`` slicing): the book and the library stay one body of code."""

from __future__ import annotations

import inspect


def show_source(obj, *, part: str = "code", max_lines: int | None = None) -> None:
    """Print part of a function's (or class's) source, as the chapter text refers to it.

    Parameters
    ----------
    obj : function, class or module
        Anything :func:`inspect.getsource` accepts.
    part : {"code", "docstring", "signature", "all"}
        ``"code"``: the source with the docstring replaced by ``\"\"\"...\"\"\"``;
        ``"docstring"``: the docstring only (its formula and references);
        ``"signature"``: the call signature; ``"all"``: the whole source.
    max_lines : int, optional
        Print at most this many lines (a final ``...`` marks the cut).
    """
    if part == "signature":
        text = f"{obj.__name__}{inspect.signature(obj)}"
    elif part == "docstring":
        text = inspect.getdoc(obj) or ""
    elif part in ("code", "all"):
        text = inspect.getsource(obj)
        doc = obj.__doc__
        if part == "code" and doc:
            pieces = text.split('"""')
            if len(pieces) >= 3:
                text = pieces[0] + '"""..."""' + '"""'.join(pieces[2:])
    else:
        raise ValueError(
            f"part must be one of 'code', 'docstring', 'signature', 'all'; got {part!r}"
        )
    lines = text.rstrip().splitlines()
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines] + ["..."]
    print("\n".join(lines))
