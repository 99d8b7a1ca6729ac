"""``thermo-nb publish`` pushes a built site to a gh-pages branch with ghp-import; here
into a local bare repository, from a scratch repository, with a tiny fake site."""

import subprocess
import sys

import pytest

pytest.importorskip("ghp_import", reason="ghp-import missing: pip install -e '.[book]'")


def git(*args, cwd):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def publish(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "thermo_nb.pipeline.cli", "publish", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def repos(tmp_path):
    remote = tmp_path / "site.git"
    git("init", "--bare", "-q", str(remote), cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", cwd=work)
    for key, value in (("user.name", "t"), ("user.email", "t@example.org")):
        git("config", key, value, cwd=work)
    (work / "README.md").write_text("x\n")
    git("add", "README.md", cwd=work)
    git("commit", "-q", "-m", "init", cwd=work)
    html = tmp_path / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<h1>thermo-sgd</h1>\n")
    (html / "_static" / "book.css").write_text("body {}\n")
    return remote, work, html


def test_publish_pushes_the_site_to_a_bare_repository(repos):
    remote, work, html = repos
    res = publish("--html", str(html), "--remote", str(remote), cwd=work)
    assert res.returncode == 0, res.stdout + res.stderr
    files = git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split()
    assert sorted(files) == [".nojekyll", "_static/book.css", "index.html"]
    assert "<h1>thermo-sgd</h1>" in git("show", "gh-pages:index.html", cwd=remote)

    (html / "index.html").write_text("<h1>second</h1>\n")
    res = publish(
        "--html", str(html), "--remote", str(remote), "--branch", "site", cwd=work
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "second" in git("show", "site:index.html", cwd=remote)
    res = publish("--html", str(html), "--remote", str(remote), cwd=work)
    assert res.returncode == 0, res.stdout + res.stderr  # a second push: fast-forward
    log = git("log", "--oneline", "gh-pages", cwd=remote).splitlines()
    assert len(log) == 2 and "Publish the book from" in log[0]


def test_publish_refuses_a_folder_without_a_built_site(repos, tmp_path):
    remote, work, _ = repos
    res = publish("--html", str(tmp_path / "empty"), "--remote", str(remote), cwd=work)
    assert res.returncode == 2
    assert "--html:" in res.stderr and "holds no index.html" in res.stderr


def test_publish_reports_a_push_that_fails(repos, tmp_path):
    _, work, html = repos
    res = publish("--html", str(html), "--remote", str(tmp_path / "nope.git"), cwd=work)
    assert res.returncode == 1
    assert "thermo-nb publish: ghp-import failed" in res.stderr
