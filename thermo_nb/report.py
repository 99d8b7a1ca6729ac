"""Scorecards: the measured verdict on every claim a chapter reproduces.

Contract (``../shared/DESIGN.md``): a chapter ends with a table with one row per claim and
exactly the keys ``id, claim, source, expected, measured, tolerance, verdict, profile``,
and writes it to ``output_dir/scorecard.json`` as a JSON list of objects.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from .runtime import atomic_write_bytes

VERDICTS = ("reproduced", "partially reproduced", "not reproduced", "refuted", "inconclusive")
KEYS = ("id", "claim", "source", "expected", "measured", "tolerance", "verdict", "profile")

_VERDICT_MARK = {
    "reproduced": "✅ reproduced",
    "partially reproduced": "🟡 partially reproduced",
    "not reproduced": "❌ not reproduced",
    "refuted": "⛔ refuted",
    "inconclusive": "❔ inconclusive",
}


def _jsonable(x: Any) -> Any:
    """Numbers stay numbers (NaN/inf become strings), numpy/torch scalars become Python."""
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 0) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def verdict_from_tolerance(measured: float, expected: float, tolerance: float, *,
                           partial_factor: float = 3.0, relative: bool = False) -> str:
    """Verdict for a numeric claim ``measured ≈ expected ± tolerance``.

    ``reproduced`` if ``|measured - expected| <= tolerance``; ``partially reproduced`` if
    within ``partial_factor * tolerance``; ``not reproduced`` otherwise; ``inconclusive`` if
    the measurement is not finite. With ``relative=True`` the tolerance is a fraction of
    ``|expected|``.
    """
    if measured is None or not math.isfinite(float(measured)):
        return "inconclusive"
    tol = tolerance * abs(expected) if relative else tolerance
    err = abs(float(measured) - float(expected))
    if err <= tol:
        return "reproduced"
    if err <= partial_factor * tol:
        return "partially reproduced"
    return "not reproduced"


class Scorecard:
    """Collects a chapter's claims and their measured verdicts.

    Examples
    --------
    >>> sc = Scorecard("demo", profile="quick")
    >>> sc.add("ift", claim="<exp(-Δs_tot)> = 1", source="Seifert 2005, eq. 17",
    ...        expected=1.0, measured=1.02, tolerance="±0.05 (2 s.e.)", verdict="reproduced")
    >>> sc.rows[0]["verdict"]
    'reproduced'
    """

    def __init__(self, chapter: str, profile: str):
        self.chapter = chapter
        self.profile = profile
        self.rows: list[dict] = []

    def add(self, id: str, *, claim: str, source: str, expected: Any, measured: Any,
            tolerance: Any, verdict: str) -> dict:
        """Add (or replace, by ``id``) one claim. ``verdict`` must be one of :data:`VERDICTS`."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {list(VERDICTS)}, got {verdict!r}")
        if not isinstance(id, str) or not id:
            raise ValueError(f"id must be a non-empty string, got {id!r}")
        row = {"id": id, "claim": claim, "source": source, "expected": _jsonable(expected),
               "measured": _jsonable(measured), "tolerance": _jsonable(tolerance),
               "verdict": verdict, "profile": self.profile}
        self.rows = [r for r in self.rows if r["id"] != id] + [row]
        return row

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(KEYS))

    def write(self, output_dir: "str | os.PathLike") -> Path:
        """Write ``output_dir/scorecard.json`` atomically and return its path."""
        path = Path(output_dir) / "scorecard.json"
        atomic_write_bytes(path, json.dumps(self.rows, indent=2, ensure_ascii=False).encode())
        return path

    def show(self, output_dir: "str | os.PathLike | None" = None):
        """Display the scorecard as a styled table (and write the JSON when ``output_dir``)."""
        if output_dir is not None:
            self.write(output_dir)
        df = self.to_frame()
        df["verdict"] = df["verdict"].map(_VERDICT_MARK)
        try:
            from IPython.display import display

            display(df.style.hide(axis="index").set_properties(
                **{"text-align": "left", "white-space": "normal"}))
        except ImportError:  # pragma: no cover
            print(df.to_string(index=False))
        return df

    def summary(self) -> dict:
        return {v: sum(r["verdict"] == v for r in self.rows) for v in VERDICTS}


def load_scorecard(path: "str | os.PathLike") -> list[dict]:
    """Read and check a ``scorecard.json`` (a list of objects with exactly :data:`KEYS`)."""
    rows = json.loads(Path(path).read_text())
    if not isinstance(rows, list):
        raise ValueError(f"{path}: a scorecard must be a JSON list, got {type(rows).__name__}")
    for i, r in enumerate(rows):
        if set(r) != set(KEYS):
            raise ValueError(f"{path}: row {i} has keys {sorted(r)}, expected {list(KEYS)}")
        if r["verdict"] not in VERDICTS:
            raise ValueError(f"{path}: row {i} has verdict {r['verdict']!r}")
    return rows


def _md_cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def scorecard_page(chapters: Iterable[tuple[str, str, "str | os.PathLike | None"]]) -> str:
    """Markdown of the book's *Scorecard* page from each chapter's ``scorecard.json``.

    Parameters
    ----------
    chapters : iterable of ``(doc_name, title, scorecard_json_path_or_None)``
        ``doc_name`` is the chapter's document (``"seifert"``), used for the link.
    """
    lines = ["# Scorecard", "",
             "Every claim the book tests, with the verdict its chapter measured. This page is "
             "generated by `thermo-nb build` from the `scorecard.json` file each chapter "
             "writes; the profile column says at which scale the numbers were measured.", ""]
    totals = {v: 0 for v in VERDICTS}
    sections = []
    for doc, title, path in chapters:
        sections.append(f"## [{title}]({doc}.ipynb)")
        sections.append("")
        if path is None or not Path(path).exists():
            sections.append(f"*No scorecard: the chapter `{doc}` was not executed in this build.*")
            sections.append("")
            continue
        rows = load_scorecard(path)
        sections.append("| id | claim | expected | measured | tolerance | verdict | profile |")
        sections.append("|---|---|---|---|---|---|---|")
        for r in rows:
            totals[r["verdict"]] += 1
            sections.append("| " + " | ".join(_md_cell(r[k]) for k in (
                "id", "claim", "expected", "measured", "tolerance")) +
                f" | {_VERDICT_MARK[r['verdict']]} | {r['profile']} |")
        sections.append("")
    lines.append("**Totals:** " + ", ".join(f"{_VERDICT_MARK[v]}: {n}" for v, n in totals.items()))
    lines.append("")
    return "\n".join(lines + sections)
