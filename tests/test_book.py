"""Smoke run of every chapter (quick profile) and the rendered book, checked in Chromium.

The session fixture runs the README's build (`thermo-nb build --profile quick`), which
executes every chapter with papermill and builds the HTML with warnings as errors.  The
browser test then serves ``_build/html`` on 127.0.0.1, opens every page in headless
Chromium, saves a screenshot under ``_build/screenshots`` and checks the rendered DOM.
"""

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from required_claims import REQUIRED_CLAIMS

from thermo_nb.chapters import CHAPTER_MODULES
from thermo_nb.pipeline.report import load_scorecard

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"


pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def built_book():
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "thermo_nb.pipeline.cli",
            "build",
            "--profile",
            "quick",
            "--jobs",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, (
        f"book build failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    )
    return HTML


def test_every_chapter_runs_and_the_book_builds(built_book):
    assert (built_book / "index.html").exists()
    for chapter in CHAPTER_MODULES:
        assert (built_book / "book" / f"{chapter}.html").exists()
    assert (built_book / "book" / "scorecard.html").exists()


@pytest.mark.parametrize("chapter", CHAPTER_MODULES)
def test_chapter_scorecard_has_the_required_claims(built_book, chapter):
    rows = load_scorecard(ROOT / "_build" / "outputs" / chapter / "scorecard.json")
    ids = [r["id"] for r in rows]
    missing = [c for c in REQUIRED_CLAIMS[chapter] if c not in ids]
    assert not missing, f"{chapter} scorecard lacks {missing}"
    assert all(r["profile"] == "quick" for r in rows)


def test_scorecard_page_lists_every_chapters_claims(built_book):
    page = (built_book / "book" / "scorecard.html").read_text()
    for chapter, ids in REQUIRED_CLAIMS.items():
        assert f'href="{chapter}.html"' in page
        for claim in ids:
            assert claim.replace("_", "_") in page, claim


# ----------------------------------------------------------------------------- browser

CHROMIUM = (
    shutil.which("chromium")
    or shutil.which("chromium-browser")
    or shutil.which("google-chrome")
)
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
]


@pytest.fixture(scope="session")
def served_book(built_book, tmp_path_factory):
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(built_book)
    )
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def chromium(url, *args, profile_dir):
    return subprocess.run(
        [CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile_dir}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
    )


PAGES = ["intro", *CHAPTER_MODULES, "scorecard"]


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (.ci/run installs "
    "Debian's chromium; locally: apt-get install chromium)",
)
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_a_real_browser(served_book, page, tmp_path):
    url = f"{served_book}/book/{page}.html"
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    dom = chromium(url, "--dump-dom", profile_dir=tmp_path / "p1").stdout
    chromium(
        url,
        "--window-size=1280,2400",
        f"--screenshot={shots / (page + '.png')}",
        profile_dir=tmp_path / "p2",
    )
    assert (shots / f"{page}.png").stat().st_size > 10_000, "a non-empty screenshot"
    assert "<article" in dom and "bd-article" in dom, "the page body rendered"
    # no Python traceback or error output anywhere on the page
    assert "Traceback (most recent call last)" not in dom
    assert not re.search(r'class="output (traceback|error)', dom)
    for block in re.findall(r'<div class="output stderr.*?</div>', dom, flags=re.S):
        assert not re.search(r"Error|Exception|Traceback", block), block[:500]
    # math typeset by the local MathJax copy (no network needed)
    assert "_static/mathjax/tex-mml-chtml.js" in dom
    if page != "scorecard":
        assert "<mjx-container" in dom, "MathJax typeset the page's math"
        assert 'class="math notranslate nohighlight">\\(' not in dom.replace("\n", "")
    if page in CHAPTER_MODULES:
        figures = re.findall(r'<img[^>]+src="[^"]*_images/[^"]+\.png"', dom)
        assert figures, f"chapter {page} has at least one figure"
        assert "Scorecard" in dom


def test_rendered_book_shows_no_path_of_the_build_machine(built_book):
    """Papermill parameters, printed configs and warnings must not leak the absolute
    folder the book was built in (or the virtual environment inside it)."""
    needles = {str(ROOT), str(ROOT.resolve())}
    for page in built_book.rglob("*.html"):
        text = page.read_text(errors="replace")
        for needle in needles:
            assert needle not in text, f"{page.relative_to(built_book)} shows {needle}"


_MEASURE_JS = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const article = document.querySelector("article");
  const box = (el, kind) => ({
    kind: kind,
    cls: el.className,
    text: el.textContent.slice(0, 80),
    right: el.getBoundingClientRect().right,
    article_right: article.getBoundingClientRect().right,
    box_scroll: el.parentElement.scrollWidth,
    box_client: el.parentElement.clientWidth,
    scroll: el.scrollWidth,
    client: el.clientWidth,
  });
  const out = [...article.querySelectorAll("table")].map((t) => box(t, "table"))
    .concat([...article.querySelectorAll("div.cell_input pre")].map((p) => box(p, "code")));
  const pre = document.createElement("pre");
  pre.id = "thermo-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 300));
</script>
"""


def _measure(served_book, page, tmp_path):
    """Widths of the tables and code-cell inputs of a rendered page in a 1400-px window."""
    import html
    import json

    source = HTML / "book" / f"{page}.html"
    probe = source.with_name(f"_measure_{page}.html")
    probe.write_text(source.read_text().replace("</body>", _MEASURE_JS + "</body>"))
    try:
        dom = chromium(
            f"{served_book}/book/{probe.name}",
            "--window-size=1400,1000",
            "--dump-dom",
            profile_dir=tmp_path / "p",
        ).stdout
    finally:
        probe.unlink()
    m = re.search(r'<pre id="thermo-measure">(.*?)</pre>', dom, flags=re.S)
    assert m, "the measuring script ran"
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_scorecard_tables_fit_the_content_width_at_1400_px(served_book, tmp_path):
    """Every column of the Scorecard page's tables is visible without horizontal
    scrolling in a 1400-pixel window: no table is wider than its container or than
    the article column."""
    tables = _measure(served_book, "scorecard", tmp_path)
    assert sum(t["cls"] == "scorecard" for t in tables) == len(CHAPTER_MODULES)
    for t in tables:
        assert t["box_scroll"] <= t["box_client"] + 1, t
        assert t["scroll"] <= t["client"] + 1, t
        assert t["right"] <= t["article_right"] + 1, t


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
@pytest.mark.parametrize("chapter", CHAPTER_MODULES)
def test_chapter_code_cells_fit_the_content_width_at_1400_px(
    served_book, chapter, tmp_path
):
    """An 88-column code line is readable without horizontal scrolling at 1400 px."""
    code = [c for c in _measure(served_book, chapter, tmp_path) if c["kind"] == "code"]
    assert code, "the page has code cells"
    wide = [c["text"] for c in code if c["scroll"] > c["client"] + 1]
    assert not wide, f"code cells wider than the column: {wide}"


def test_a_relative_tolerance_is_shown_with_its_unit(built_book):
    """The Jarzynski row's tolerance is relative: it reads "±3 % (relative)", not a
    bare 0.03 that would read as an absolute band."""
    rows = load_scorecard(ROOT / "_build" / "outputs" / "seifert" / "scorecard.json")
    (row,) = [r for r in rows if r["id"] == "jarzynski_double_well"]
    assert isinstance(row["tolerance"], str) and "%" in row["tolerance"]
