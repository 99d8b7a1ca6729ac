#!/usr/bin/env python3
"""Set up the environment and build or test thermo-sgd, on a fresh machine with Python 3 and pip.

    python3 dev.py book    # create .venv if needed, execute every chapter (quick), build _build/html
    python3 dev.py test    # create .venv if needed, run the test suite (pytest)

Extra arguments go to the underlying command (``thermo-nb build`` or ``pytest``), e.g.
``python3 dev.py book --profile full`` or ``python3 dev.py test -k kl_entropy``.

Environment variables:
    THERMO_TORCH        pip requirement for torch (default ``torch==2.13.0``: where a local
                        CPU wheel of that version is on pip's find-links, pip takes it; on a
                        GPU box set e.g. THERMO_TORCH="torch==2.11.0" or pre-install torch)
    THERMO_TORCH_INDEX  extra pip index for torch, e.g. https://download.pytorch.org/whl/cpu
                        (CPU-only wheels) or https://download.pytorch.org/whl/cu126
    THERMO_VENV         virtual environment folder (default .venv)
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("THERMO_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def sh(*cmd: str | os.PathLike, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def ensure_env() -> None:
    """Create the venv and install torch (CPU wheel here) and thermo_nb with its extras."""
    if sys.version_info < (3, 10):
        sys.exit(f"thermo-sgd needs Python >= 3.10, this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    stamp = VENV / ".thermo-sgd-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check"]
    has_torch = subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0
    if not has_torch:
        # Install torch on its own first: thermo_nb only asks for torch>=2.3, so this build
        # (the CPU wheel by default here) is kept and never replaced by a multi-GB CUDA build.
        torch_req = os.environ.get("THERMO_TORCH", "torch==2.13.0")
        extra = ["--extra-index-url", os.environ["THERMO_TORCH_INDEX"]] \
            if os.environ.get("THERMO_TORCH_INDEX") else []
        sh(*pip, torch_req, *extra)
    sh(*pip, "-e", f"{ROOT}[book,test]")
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("book", "test", "setup"):
        print(__doc__)
        return 2
    what, rest = argv[0], argv[1:]
    ensure_env()
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if what == "setup":
        return 0
    if what == "book":
        cmd = [BIN / "thermo-nb", "build", "--profile", "quick", "--jobs", "2", *rest]
    else:
        cmd = [PY, "-m", "pytest", *rest]
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
