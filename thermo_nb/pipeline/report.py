"""Scorecards: the measured verdict on every claim a chapter reproduces.

Contract (``../shared/DESIGN.md``): a chapter ends with a table with one row per claim and
exactly the keys ``id, claim, source, expected, measured, tolerance, verdict, profile``,
and writes it to ``output_dir/scorecard.json`` as a JSON list of objects.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..runtime import atomic_write_bytes

VERDICTS = (
    "reproduced",
    "partially reproduced",
    "not reproduced",
    "refuted",
    "inconclusive",
)
KEYS = (
    "id",
    "claim",
    "source",
    "expected",
    "measured",
    "tolerance",
    "verdict",
    "profile",
)

_VERDICT_COLOUR = {  # background colours of the verdict cells (colour-blind safe pairs)
    "reproduced": "#d4edda",
    "partially reproduced": "#fff3cd",
    "not reproduced": "#f8d7da",
    "refuted": "#f1b0b7",
    "inconclusive": "#e2e3e5",
}


def format_value(x: Any) -> str:
    """Numbers to 4 significant digits, everything else as text."""
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _jsonable(x: Any) -> Any:
    """Numbers stay numbers (NaN/inf become strings), numpy/torch scalars become Python."""
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 0) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


_EMPTY_WORDS = re.compile(r"\b(nan|inf|none|diverged|empty)\b", re.IGNORECASE)


def is_empty_measurement(x: Any) -> bool:
    """True when ``x`` carries no measurement: None, a non-finite number, an empty
    container, a container holding a non-finite number, or text that is empty or names
    NaN, inf, None, "diverged" or "empty" (for example ``"nan-nan"``)."""
    if x is None:
        return True
    if hasattr(x, "tolist") and callable(x.tolist):  # numpy / torch
        x = x.tolist()
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, float)):
        return not math.isfinite(x)
    if isinstance(x, str):
        return not x.strip() or bool(_EMPTY_WORDS.search(x))
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        return len(x) == 0 or any(is_empty_measurement(v) for v in x)
    return False


def verdict_from_tolerance(
    measured: float,
    expected: float,
    tolerance: float,
    *,
    partial_factor: float = 3.0,
    relative: bool = False,
) -> str:
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

    def add(
        self,
        id: str,
        *,
        claim: str,
        source: str,
        expected: Any,
        measured: Any,
        tolerance: Any,
        verdict: str,
    ) -> dict:
        """Add (or replace, by ``id``) one claim. ``verdict`` must be one of :data:`VERDICTS`."""
        if verdict not in VERDICTS:
            raise ValueError(
                f"verdict must be one of {list(VERDICTS)}, got {verdict!r}"
            )
        if not isinstance(id, str) or not id:
            raise ValueError(f"id must be a non-empty string, got {id!r}")
        if verdict in ("reproduced", "partially reproduced") and is_empty_measurement(
            measured
        ):
            # Nothing from nothing: a NaN, empty or diverged measurement is no evidence.
            warnings.warn(
                f"claim {id!r}: verdict {verdict!r} with measured={measured!r} "
                "(NaN, empty or diverged) -> 'inconclusive'",
                stacklevel=2,
            )
            verdict = "inconclusive"
            tolerance = f"{tolerance} (measured value missing: no evidence)"
        row = {
            "id": id,
            "claim": claim,
            "source": source,
            "expected": _jsonable(expected),
            "measured": _jsonable(measured),
            "tolerance": _jsonable(tolerance),
            "verdict": verdict,
            "profile": self.profile,
        }
        self.rows = [r for r in self.rows if r["id"] != id] + [row]
        return row

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(KEYS))

    def write(self, output_dir: "str | os.PathLike") -> Path:
        """Write ``output_dir/scorecard.json`` atomically and return its path."""
        path = Path(output_dir) / "scorecard.json"
        atomic_write_bytes(
            path, json.dumps(self.rows, indent=2, ensure_ascii=False).encode()
        )
        return path

    def show(self, output_dir: "str | os.PathLike | None" = None) -> None:
        """Display the scorecard as a styled table (and write the JSON when ``output_dir``)."""
        if output_dir is not None:
            self.write(output_dir)
        # The verdict comes right after the id so it is visible without scrolling; the
        # profile goes into the caption (the JSON keeps the contract's key order).
        df = self.to_frame()[
            ["id", "verdict", "claim", "expected", "measured", "tolerance", "source"]
        ]
        for col in ("expected", "measured", "tolerance"):
            df[col] = df[col].map(format_value)
        try:
            from IPython.display import display

            counts = ", ".join(f"{n} {v}" for v, n in self.summary().items() if n)
            styled = (
                df.style.hide(axis="index")
                .set_caption(
                    f"Scorecard of {self.chapter!r} (profile {self.profile!r}): "
                    f"{counts}"
                )
                .set_properties(
                    **{
                        "text-align": "left",
                        "white-space": "normal",
                        "font-size": "0.85em",
                        "vertical-align": "top",
                    }
                )
                .set_properties(subset=["id", "verdict"], **{"white-space": "nowrap"})
                .map(
                    lambda v: f"background-color: {_VERDICT_COLOUR.get(v, 'white')}",
                    subset=["verdict"],
                )
            )
            display(styled)
        except ImportError:  # pragma: no cover
            print(df.to_string(index=False))

    def summary(self) -> dict:
        return {v: sum(r["verdict"] == v for r in self.rows) for v in VERDICTS}


def load_scorecard(path: "str | os.PathLike") -> list[dict]:
    """Read and check a ``scorecard.json`` (a list of objects with exactly :data:`KEYS`)."""
    rows = json.loads(Path(path).read_text())
    if not isinstance(rows, list):
        raise ValueError(
            f"{path}: a scorecard must be a JSON list, got {type(rows).__name__}"
        )
    for i, r in enumerate(rows):
        if set(r) != set(KEYS):
            raise ValueError(
                f"{path}: row {i} has keys {sorted(r)}, expected {list(KEYS)}"
            )
        if r["verdict"] not in VERDICTS:
            raise ValueError(f"{path}: row {i} has verdict {r['verdict']!r}")
    return rows


def _html(x: Any) -> str:
    import html

    return html.escape(str(x), quote=True).replace("\n", "<br>")


def _verdict_badge(verdict: str) -> str:
    colour = _VERDICT_COLOUR[verdict]
    return (
        f'<span class="verdict" style="background-color:{colour}">'
        f"<strong>{verdict}</strong></span>"
    )


def _scorecard_table(rows: list[dict]) -> list[str]:
    """One chapter's claims as an HTML table that fits the content column: the id, the
    verdict, the claim and its source share the first column; the numbers get the rest;
    long values wrap (``table.scorecard`` in ``book/_static/thermo-sgd.css``)."""
    out = [
        '<table class="scorecard">',
        '<colgroup><col class="claim"><col class="number"><col class="number">'
        '<col class="number"></colgroup>',
        "<thead><tr><th>claim</th><th>expected</th><th>measured</th>"
        "<th>tolerance</th></tr></thead>",
        "<tbody>",
    ]
    for r in rows:
        claim = (
            f"<code>{_html(r['id'])}</code> {_verdict_badge(r['verdict'])}"
            f'<div class="claim-text">{_html(r["claim"])}</div>'
            f'<div class="claim-source">{_html(r["source"])}</div>'
        )
        numbers = "".join(
            f"<td>{_html(format_value(r[k]))}</td>"
            for k in ("expected", "measured", "tolerance")
        )
        out.append(f"<tr><td>{claim}</td>{numbers}</tr>")
    out += ["</tbody>", "</table>"]
    return out


def scorecard_page(
    chapters: Iterable[tuple[str, str, "str | os.PathLike | None"]],
) -> str:
    """Markdown of the book's *Scorecard* page from each chapter's ``scorecard.json``.

    Parameters
    ----------
    chapters : iterable of ``(doc_name, title, scorecard_json_path_or_None)``
        ``doc_name`` is the chapter's document (``"seifert"``), used for the link.
    """
    summary = ["| chapter | claims | verdicts |", "|---|---|---|"]
    sections = []
    for doc, title, path in chapters:
        sections += [f"## {title}", ""]
        if path is None or not Path(path).exists():
            sections += [
                f"*No scorecard: the chapter [{doc}]({doc}.ipynb) was not executed "
                "in this build.*",
                "",
            ]
            summary.append(f"| [{title}]({doc}.ipynb) | - | not executed |")
            continue
        rows = load_scorecard(path)
        counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
        summary.append(
            f"| [{title}]({doc}.ipynb) | {len(rows)} | "
            + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
            + " |"
        )
        profiles = sorted({r["profile"] for r in rows})
        sections += [
            f"Read the chapter: [{title}]({doc}.ipynb). Measured with the "
            f"{', '.join(f'`{p}`' for p in profiles)} profile.",
            "",
            *_scorecard_table(rows),
        ]
        sections.append("")
    lines = [
        "# Scorecard",
        "",
        "Every claim the book tests, with the verdict its chapter measured. This page is "
        "generated by `thermo-nb build` from the `scorecard.json` file each chapter "
        "writes; each chapter's section says at which scale the numbers were measured "
        "(`quick`: minutes on two CPU cores; `full`: the papers' scale on a GPU).",
        "",
        *summary,
        "",
    ]
    return "\n".join(lines + sections)
