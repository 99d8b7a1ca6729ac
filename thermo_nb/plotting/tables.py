"""Numeric tables as a reader sees them: significant digits, not raw floats."""

from __future__ import annotations

import math
from numbers import Integral, Real


def format_significant(x, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits (integers and text unchanged, NaN as "nan").

    Examples
    --------
    >>> format_significant(89.62042), format_significant(0.000123456, 3)
    ('89.62', '0.000123')
    """
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return str(x)
    if isinstance(x, Integral):
        return str(int(x))
    if isinstance(x, Real):
        x = float(x)
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}g}"
    return str(x)


def format_table(df, digits: int = 4):
    """A pandas ``Styler`` showing every number of ``df`` to ``digits`` significant digits.

    Parameters
    ----------
    df : pandas.DataFrame
    digits : int
        Significant digits of floats (integers are shown whole).

    Returns
    -------
    pandas.io.formats.style.Styler
        Displays as an HTML table in the book; ``df`` itself is unchanged.
    """
    return df.style.format(lambda v: format_significant(v, digits))
