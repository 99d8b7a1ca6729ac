"""Scorecards: the JSON contract, verdict rules and the generated Scorecard page."""

import json

import pytest

from thermo_nb.pipeline.report import (
    KEYS,
    Scorecard,
    load_scorecard,
    scorecard_page,
    verdict_from_tolerance,
)


def test_scorecard_json_has_exactly_the_contract_keys(tmp_path):
    sc = Scorecard("demo", profile="quick")
    sc.add(
        "a",
        claim="c",
        source="s",
        expected=1.0,
        measured=float("nan"),
        tolerance=0.1,
        verdict="inconclusive",
    )
    sc.add(
        "b",
        claim="c",
        source="s",
        expected="> 0",
        measured=0.3,
        tolerance="2 s.e.",
        verdict="reproduced",
    )
    path = sc.write(tmp_path)
    rows = json.loads(path.read_text())
    assert isinstance(rows, list) and [r["id"] for r in rows] == ["a", "b"]
    assert all(list(r) == list(KEYS) for r in rows)
    assert rows[0]["measured"] == "nan"  # NaN is not valid JSON: stored as text
    assert load_scorecard(path) == rows


def test_adding_the_same_id_replaces_the_row():
    sc = Scorecard("demo", profile="full")
    sc.add(
        "a",
        claim="c",
        source="s",
        expected=1,
        measured=2,
        tolerance=0,
        verdict="refuted",
    )
    sc.add(
        "a",
        claim="c",
        source="s",
        expected=1,
        measured=1,
        tolerance=0,
        verdict="reproduced",
    )
    assert len(sc.rows) == 1 and sc.rows[0]["verdict"] == "reproduced"


def test_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Scorecard("d", "quick").add(
            "a",
            claim="",
            source="",
            expected=0,
            measured=0,
            tolerance=0,
            verdict="kind of",
        )


@pytest.mark.parametrize(
    "measured,expected_verdict",
    [
        (1.05, "reproduced"),
        (1.2, "partially reproduced"),
        (2.0, "not reproduced"),
        (float("nan"), "inconclusive"),
    ],
)
def test_verdict_from_tolerance(measured, expected_verdict):
    assert verdict_from_tolerance(measured, 1.0, 0.1) == expected_verdict


def test_load_scorecard_rejects_wrong_keys(tmp_path):
    p = tmp_path / "scorecard.json"
    p.write_text(json.dumps([{"id": "a"}]))
    with pytest.raises(ValueError, match="expected"):
        load_scorecard(p)


def test_scorecard_page_lists_every_chapter_and_counts_verdicts(tmp_path):
    sc = Scorecard("one", "quick")
    sc.add(
        "x",
        claim="a | b",
        source="s",
        expected=1,
        measured=0.5,
        tolerance=0.1,
        verdict="refuted",
    )
    sc.write(tmp_path / "one")
    page = scorecard_page(
        [
            ("one", "Chapter One", tmp_path / "one" / "scorecard.json"),
            ("two", "Chapter Two", tmp_path / "missing.json"),
        ]
    )
    assert (
        "[Chapter One](one.ipynb)" in page
        and '<div class="claim-text">a | b</div>' in page
    )
    assert (
        "<strong>refuted</strong>" in page
        and "| [Chapter One](one.ipynb) | 1 | 1 refuted |" in page
    )
    assert "not executed in this build" in page


@pytest.mark.parametrize(
    "measured",
    [
        float("nan"),
        None,
        "nan-nan",
        "",
        [],
        [1.0, float("inf")],
        "diverged",
        {"a": None},
    ],
)
@pytest.mark.parametrize("verdict", ["reproduced", "partially reproduced"])
def test_scorecard_gives_no_positive_verdict_from_an_empty_measurement(
    measured, verdict
):
    sc = Scorecard("demo", profile="quick")
    with pytest.warns(UserWarning, match="inconclusive"):
        row = sc.add(
            "x",
            claim="c",
            source="s",
            expected=1.0,
            measured=measured,
            tolerance=0.1,
            verdict=verdict,
        )
    assert row["verdict"] == "inconclusive"
    assert "no evidence" in row["tolerance"]


@pytest.mark.parametrize("measured", [0.0, 1.5, "0.52-0.61", [1.0, 2.0], "12 of 12"])
def test_scorecard_keeps_verdicts_of_real_measurements(measured):
    sc = Scorecard("demo", profile="quick")
    row = sc.add(
        "x",
        claim="c",
        source="s",
        expected=1.0,
        measured=measured,
        tolerance=0.1,
        verdict="reproduced",
    )
    assert row["verdict"] == "reproduced"


def test_scorecard_page_escapes_html_in_claims(tmp_path):
    sc = Scorecard("one", "quick")
    sc.add(
        "x",
        claim="<script>alert(1)</script> a < b",
        source="s",
        expected=1,
        measured=0.5,
        tolerance=0.1,
        verdict="refuted",
    )
    sc.write(tmp_path)
    page = scorecard_page([("one", "One", tmp_path / "scorecard.json")])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a &lt; b" in page
