"""The k-NN engine's backends give identical exact answers (issue 17).

"brute" (certified float32 candidates + float64 re-rank), "faiss" (FAISS's float32
``IndexFlatL2`` as the candidate search, same re-rank and certificate) and "tree"
(scipy's cKDTree) must agree with a float64 cKDTree query to rounding; without FAISS
installed everything but ``backend="faiss"`` works as before, and that one says how to
install it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from thermo_nb import kl_entropy, knn_distances, knn_graph_entropy, ksg_mutual_info
from thermo_nb.neighbors import search

faiss = pytest.importorskip("faiss", reason="the faiss extra (faiss-cpu) is needed")

BACKENDS = ["brute", "faiss", "tree"]


def _reference(x, k):
    return cKDTree(x).query(x, k=k + 1)[0][:, 1:]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d", [10, 60, 200])
def test_every_backend_equals_a_float64_kd_tree(backend, d):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((1201, d)) * rng.uniform(0.5, 3.0, d) + 4.0
    for k in (1, 5):
        got = knn_distances(x, k, return_all=True, backend=backend).numpy()
        np.testing.assert_allclose(got, _reference(x, k), rtol=1e-12, atol=1e-12)


def test_faiss_backend_with_ties_and_duplicates_equals_the_kd_tree():
    # an integer lattice (massive exact ties) plus exact duplicates: FAISS's candidate list
    # may not contain the point itself, and many rows need the float64 fallback
    grid = np.stack(np.meshgrid(*[np.arange(6.0)] * 3, indexing="ij"), -1).reshape(
        -1, 3
    )
    x = np.concatenate([grid, grid[:40], np.zeros((5, 3))])
    x = np.concatenate([x, np.zeros((len(x), 9))], axis=1)  # d = 12 > TREE_MAX_DIM
    for k in (1, 3, 8):
        for backend in ("brute", "faiss"):
            got = knn_distances(x, k, return_all=True, backend=backend).numpy()
            np.testing.assert_allclose(got, _reference(x, k), rtol=1e-12, atol=1e-12)


def test_faiss_backend_rows_that_fail_the_certificate_are_recomputed(monkeypatch):
    # origin and +-e_i in d = 30: long runs of tied distances cannot be certified
    d = 30
    x = np.concatenate([np.zeros((1, d)), np.eye(d), -np.eye(d)])
    x = np.concatenate([x, np.random.default_rng(0).standard_normal((40, d))])
    calls = []
    original = search._exact_rows_float64

    def spy(xt, rows, *args):
        calls.append(int(rows.numel()))
        return original(xt, rows, *args)

    monkeypatch.setattr(search, "_exact_rows_float64", spy)
    got = knn_distances(x, 3, return_all=True, backend="faiss").numpy()
    assert sum(calls) >= 2 * d
    np.testing.assert_allclose(got, _reference(x, 3), rtol=1e-12, atol=1e-12)


def test_estimators_give_identical_values_on_every_backend():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 24))
    h = {b: kl_entropy(x, k=5, backend=b) for b in BACKENDS}
    assert max(h.values()) - min(h.values()) < 1e-12
    g = {b: knn_graph_entropy(x, k=20, backend=b) for b in BACKENDS}
    assert max(g.values()) - min(g.values()) < 1e-9
    y = x[:, :3] + rng.standard_normal((2000, 3))
    mi = {b: ksg_mutual_info(x[:, :3], y, k=5, backend=b) for b in ("brute", "tree")}
    assert abs(mi["brute"] - mi["tree"]) < 1e-12


def test_auto_uses_faiss_where_the_measured_table_says_so(monkeypatch):
    used = []
    original = search._candidates_faiss

    def spy(*args):
        used.append(True)
        return original(*args)

    monkeypatch.setattr(search, "_candidates_faiss", spy)
    monkeypatch.setattr(search, "FAISS_PREFERRED", ((10, 100, 0, 5000),))
    x = np.random.default_rng(0).standard_normal((800, 20))
    assert search.choose_backend(800, 20, "euclidean", torch.device("cpu")) == "faiss"
    assert search.choose_backend(800, 101, "euclidean", torch.device("cpu")) == "brute"
    assert search.choose_backend(800, 20, "chebyshev", torch.device("cpu")) == "brute"
    assert search.choose_backend(800, 3, "euclidean", torch.device("cpu")) == "tree"
    got = knn_distances(x, 4, return_all=True).numpy()
    assert used
    np.testing.assert_allclose(got, _reference(x, 4), rtol=1e-12, atol=1e-12)


def test_without_faiss_auto_still_works_and_faiss_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails
    monkeypatch.setattr(search, "FAISS_PREFERRED", ((0, 10**9, 0, 10**9),))
    assert not search.faiss_available()
    x = np.random.default_rng(1).standard_normal((700, 16))
    assert search.choose_backend(700, 16, "euclidean", torch.device("cpu")) == "brute"
    got = knn_distances(x, 3, return_all=True).numpy()
    np.testing.assert_allclose(got, _reference(x, 3), rtol=1e-12, atol=1e-12)
    assert kl_entropy(x, k=3) == pytest.approx(kl_entropy(x, k=3, backend="tree"))
    with pytest.raises(ImportError, match=r"thermo-nb\[faiss\]"):
        knn_distances(x, 3, backend="faiss")
    with pytest.raises(ImportError, match=r"thermo-nb\[faiss\]"):
        kl_entropy(x, k=3, backend="faiss")


def test_bad_backends_are_refused_before_any_search():
    x = np.random.default_rng(2).standard_normal((100, 12))
    with pytest.raises(ValueError, match=r"backend must be one of \['auto', 'tree'"):
        knn_distances(x, 3, backend="kdtree")
    with pytest.raises(ValueError, match='backend="faiss" supports metric="euclidean"'):
        kl_entropy(x, k=3, metric="chebyshev", backend="faiss")
    with pytest.raises(ValueError, match='backend="faiss" supports metric="euclidean"'):
        ksg_mutual_info(x[:, :6], x[:, 6:], backend="faiss")


def test_the_threaded_cpu_search_restores_the_thread_settings():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before, before_blas = torch.get_num_threads(), blas_threads()
    x = np.random.default_rng(4).standard_normal((3000, 40))
    knn_distances(x, 5, backend="brute")
    assert torch.get_num_threads() == before
    assert blas_threads() == before_blas
    torch.set_num_threads(1)
    try:
        got = knn_distances(x, 5, return_all=True, backend="brute").numpy()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(got, _reference(x, 5), rtol=1e-12, atol=1e-12)
