"""``thermo-nb publish``: push the built book to a ``gh-pages`` branch with ghp-import.

For people without GitHub Actions (``.github/workflows/book.yml`` does the same on every
push to main). ghp-import commits the site folder as the only content of the local branch
``--branch`` of the git repository you run it in (adding ``.nojekyll``, so GitHub Pages
serves Sphinx's ``_static`` folder), then pushes that branch to ``--remote``: a remote
name such as ``origin`` or a URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def publish(
    html: str | Path, remote: str = "origin", branch: str = "gh-pages", cwd=None
) -> int:
    """Commit ``html`` to ``branch`` and push it to ``remote``.

    Parameters
    ----------
    html : path
        The built site (``_build/html``); must hold ``index.html``.
    remote : str
        Git remote name or URL.
    branch : str
        Branch that receives the site.
    cwd : path, optional
        The git repository whose ``branch`` is written (default: the current folder).

    Returns
    -------
    int
        0 on success, 1 when git or ghp-import fails (the reason is printed).
    """
    from .params import ParameterError

    html = Path(html).expanduser().resolve()
    if not (html / "index.html").is_file():
        raise ParameterError(
            f"--html: {html} holds no index.html; build the book first "
            "(python3 dev.py book)"
        )
    if not branch.strip() or not remote.strip():
        raise ParameterError("--remote and --branch must not be empty")
    try:
        import ghp_import
    except ImportError:
        print(
            "thermo-nb publish: ghp-import is not installed; pip install -e '.[book]'",
            file=sys.stderr,
        )
        return 1
    where = Path(cwd) if cwd is not None else Path.cwd()
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=where,
        capture_output=True,
        text=True,
    ).stdout.strip()
    message = f"Publish the book{f' from {sha}' if sha else ''}"
    old = os.getcwd()
    try:
        os.chdir(where)
        ghp_import.ghp_import(
            str(html),
            mesg=message,
            remote=remote,
            branch=branch,
            push=True,
            nojekyll=True,
        )
    except (ghp_import.GhpError, subprocess.CalledProcessError) as e:
        why = e.message if isinstance(e, ghp_import.GhpError) else str(e)
        print(f"thermo-nb publish: ghp-import failed: {why}", file=sys.stderr)
        return 1
    finally:
        os.chdir(old)
    print(f"published {html} to branch {branch!r} of {remote}")
    return 0
