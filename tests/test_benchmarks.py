"""The benchmarks' quick modes run and their ratios point the way the READMEs say.

``benchmarks/bench_knn.py --quick`` times ``kl_entropy`` against cKDTree, scikit-learn
(brute and auto) and FAISS at N = 12000 under the fair protocol (one process, rotating
order, warm-up, min of 5) and exits 1 when thermo_nb is not faster than every exact peer at
d >= 10, or more than 1.5x slower than cKDTree at d = 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "THERMO_NB_PROGRESS": "0"},
    )


@pytest.mark.slow
def test_quick_knn_benchmark_ratios_point_the_claimed_way(tmp_path):
    pytest.importorskip("faiss")
    out = tmp_path / "knn.md"
    proc = _run("bench_knn.py", "--quick", "--output", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert "sklearn brute" in text and "sklearn auto" in text
    assert "faiss FlatL2 (float32)" in text and "ksg_mutual_info" in text
    assert "every cell points the way the README says" in text
