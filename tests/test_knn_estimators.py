"""Specifications of the k-NN estimators (thermo_nb.estimators.knn) and Gaussian closed forms.

Tolerances
----------
Each accuracy test averages R independent repetitions (fixed seeds) and accepts
``|mean - closed form| <= bias_allowance + 4 * SE``, where ``SE = SD / sqrt(R)`` and SD is the
larger of the SD measured across the test's own repetitions and a documented calibration SD
(measured once with 8-12 other seeds, numbers in the comments; it guards against a small SD
estimate from few repetitions).  ``bias_allowance`` is zero where the estimator is unbiased to
within its spread at the test's N, and otherwise the calibrated finite-N bias of the
Kozachenko-Leonenko estimator (known to grow with d) plus two calibration SDs, documented
next to the numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln
from scipy.stats import special_ortho_group

from thermo_nb.estimators.gaussian import gaussian_entropy, gaussian_mutual_info
from thermo_nb.estimators.knn import (
    kl_entropy,
    knn_distances,
    knn_graph_entropy,
    ksg_mutual_info,
    sphere_kl_entropy,
    uniform_sphere_entropy,
)
from thermo_nb.neighbors import search as knn_module


def within_spread(values, expected, calibration_sd, bias_allowance=0.0):
    """True if the mean of repeated estimates is within bias_allowance + 4 SE of expected."""
    values = np.asarray(values, dtype=float)
    sd = max(values.std(ddof=1), calibration_sd)
    tol = bias_allowance + 4.0 * sd / math.sqrt(values.size)
    return abs(values.mean() - expected) <= tol, values.mean(), tol


def random_covariance(d, rng):
    """Random rotation of eigenvalues drawn log-uniformly in [1/4, 4]."""
    lam = np.exp(rng.uniform(np.log(0.25), np.log(4.0), d))
    if d == 1:
        return np.diag(lam)
    q = special_ortho_group.rvs(d, random_state=rng)
    return q @ np.diag(lam) @ q.T


# ----------------------------------------------------------------------------- closed forms


def test_gaussian_entropy_matches_formula_and_eigenvalues():
    rng = np.random.default_rng(0)
    cov = random_covariance(4, rng)
    expected = (
        0.5 * 4 * np.log(2 * np.pi * np.e) + 0.5 * np.log(np.linalg.eigvalsh(cov)).sum()
    )
    assert gaussian_entropy(cov) == pytest.approx(expected, rel=1e-12)
    assert gaussian_entropy(2.0) == pytest.approx(
        0.5 * np.log(2 * np.pi * np.e * 2.0), rel=1e-12
    )


def test_gaussian_mutual_info_of_correlated_pair_is_minus_half_log_one_minus_rho_squared():
    for rho in (0.0, 0.3, 0.9):
        cov = np.array([[2.0, rho * np.sqrt(2 * 3)], [rho * np.sqrt(2 * 3), 3.0]])
        assert gaussian_mutual_info(cov, 1) == pytest.approx(
            -0.5 * np.log(1 - rho**2), abs=1e-12
        )
    # block version equals H(X) + H(Y) - H(X, Y)
    cov = random_covariance(5, np.random.default_rng(1))
    ix, iy = [0, 3], [1, 2, 4]
    expected = (
        gaussian_entropy(cov[np.ix_(ix, ix)])
        + gaussian_entropy(cov[np.ix_(iy, iy)])
        - gaussian_entropy(cov)
    )
    assert gaussian_mutual_info(cov, ix) == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- exactness


def reference_knn_entropy_with_ckdtree(x, k, metric):
    """Independent KL entropy: scipy cKDTree query + the textbook constant (NPEET style)."""
    n, d = x.shape
    p = 2 if metric == "euclidean" else np.inf
    eps = cKDTree(x).query(x, k=k + 1, p=p)[0][:, k]
    if metric == "euclidean":
        log_volume = d / 2 * np.log(np.pi) - gammaln(d / 2 + 1)
    else:
        log_volume = d * np.log(2)
    return digamma(n) - digamma(k) + log_volume + d * np.mean(np.log(eps)), eps


@pytest.mark.parametrize("metric", ["euclidean", "chebyshev"])
@pytest.mark.parametrize(
    "d", [2, 8, 40]
)  # d=2: k-d tree; d=8: tree (L2) / brute (max-norm); d=40: brute
def test_kl_entropy_equals_ckdtree_reference(metric, d):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((1500, d)) * rng.uniform(0.5, 3.0, d) + 5.0
    expected, eps = reference_knn_entropy_with_ckdtree(x, 3, metric)
    assert kl_entropy(x, k=3, metric=metric) == pytest.approx(expected, abs=1e-9)
    np.testing.assert_allclose(
        knn_distances(x, 3, metric=metric).numpy(), eps, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "metric, symmetric",
    [("euclidean", False), ("euclidean", True), ("chebyshev", False)],
)
def test_brute_force_path_with_ties_and_small_chunks_equals_ckdtree(
    metric, symmetric, monkeypatch
):
    # integer lattice: massive ties of exact distances, the hardest case for the candidate
    # certification (rows fall back to the float64 brute force); tiny chunks exercise
    # the chunk loop; the tree is switched off so d=3 goes through the brute force.
    monkeypatch.setitem(knn_module.TREE_MAX_DIM, metric, 0)
    # symmetric: the Euclidean brute force's upper-triangle tiling (normally d >= 100)
    monkeypatch.setattr(knn_module, "SYMMETRIC_MIN_DIM", 0 if symmetric else 10**9)
    grid = np.stack(np.meshgrid(*[np.arange(7.0)] * 3, indexing="ij"), -1).reshape(
        -1, 3
    )
    x = np.concatenate([grid, np.random.default_rng(0).uniform(0, 6, (300, 3))])
    p = 2 if metric == "euclidean" else np.inf
    for k in (1, 6, 20):
        ref = cKDTree(x).query(x, k=k + 1, p=p)[0][:, 1:]
        got = knn_distances(x, k, metric=metric, chunk_size=37, return_all=True).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "d, chunk_size", [(40, None), (40, 300), (120, None), (120, 700)]
)
def test_grouped_candidate_selection_equals_ckdtree(d, chunk_size):
    # d=40: full-row chunks, d=120: symmetric tiles; N not a multiple of the tile or the
    # selection group, so the tails of rows and columns are exercised too
    rng = np.random.default_rng(d)
    x = rng.standard_normal((3001, d)) * rng.uniform(0.5, 3.0, d) + 5.0
    for k in (1, 4):
        ref = cKDTree(x).query(x, k=k + 1)[0][:, 1:]
        got = knn_distances(x, k, chunk_size=chunk_size, return_all=True).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("symmetric", [False, True])
def test_float64_candidate_gemm_equals_ckdtree_and_needs_no_fallback(
    monkeypatch, symmetric
):
    # the float64 candidate GEMM (used above FLOAT32_MAX_RELATIVE_BOUND, d > 2092) forced at
    # d = 60 on both tilings; its error bound is ~1e-13 relative, so no row may need the
    # exact fallback, and the result must still equal cKDTree
    monkeypatch.setattr(knn_module, "FLOAT32_MAX_RELATIVE_BOUND", 0.0)
    monkeypatch.setattr(knn_module, "SYMMETRIC_MIN_DIM", 0 if symmetric else 10**9)
    monkeypatch.setattr(
        knn_module,
        "_exact_rows_float64",
        lambda *a: pytest.fail("exact fallback used by the float64 path"),
    )
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1501, 60)) * rng.uniform(0.5, 3.0, 60) - 2.0
    ref = cKDTree(x).query(x, k=5)[0][:, 1:]
    got = knn_distances(x, 4, chunk_size=400, return_all=True).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_very_high_dimension_uses_float64_candidates_and_matches_exact_distances(
    monkeypatch,
):
    # d = 3000 > 2092: the float32 bound, (2d + 10) u = 3.6e-4 relative, is above
    # FLOAT32_MAX_RELATIVE_BOUND and would leave most rows uncertified; the float64 path
    # must be taken (no fallback) and give the directly computed k-th distances
    assert (2 * 3000 + 10) * 2.0**-24 > knn_module.FLOAT32_MAX_RELATIVE_BOUND
    x = np.random.default_rng(3).standard_normal((300, 3000))
    monkeypatch.setattr(
        knn_module,
        "_exact_rows_float64",
        lambda *a: pytest.fail("exact fallback used at d = 3000"),
    )
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    ref = np.sqrt(np.sort(d2, axis=1)[:, :3])
    got = knn_distances(x, 3, return_all=True).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


def test_equidistant_points_force_the_exact_fallback_and_still_match_ckdtree(
    monkeypatch,
):
    # origin + the 2d points +-e_i (+ a few random points) in d=30: every row has long runs
    # of exactly tied distances, so the float32 candidate set cannot be certified and the
    # rows must be recomputed by the float64 fallback
    d = 30
    x = np.concatenate(
        [
            np.zeros((1, d)),
            np.eye(d),
            -np.eye(d),
            np.random.default_rng(0).standard_normal((40, d)),
        ]
    )
    calls = []
    original = knn_module._exact_rows_float64

    def spy(xt, rows, *args):
        calls.append(int(rows.numel()))
        return original(xt, rows, *args)

    monkeypatch.setattr(knn_module, "_exact_rows_float64", spy)
    ref = cKDTree(x).query(x, k=4)[0][:, 1:]
    got = knn_distances(x, 3, return_all=True).numpy()
    assert sum(calls) >= 2 * d  # the tied rows went through the fallback
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_knn_distances_accepts_torch_tensors_and_keeps_their_device():
    x = torch.randn(500, 12, generator=torch.Generator().manual_seed(0))
    got = knn_distances(x, 2)
    assert (
        isinstance(got, torch.Tensor)
        and got.device == x.device
        and got.dtype == torch.float64
    )
    ref = cKDTree(x.numpy()).query(x.numpy(), k=3)[0][:, 2]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


def reference_ksg_with_ckdtree(x, y, k):
    """Independent KSG algorithm 1 (max-norm joint k-NN, strict marginal counts)."""
    z = np.hstack([x, y])
    n = len(z)
    eps = cKDTree(z).query(z, k=k + 1, p=np.inf)[0][:, k]
    tree_x, tree_y = cKDTree(x), cKDTree(y)
    nx = np.array(
        [
            len(tree_x.query_ball_point(x[i], np.nextafter(eps[i], 0), p=np.inf)) - 1
            for i in range(n)
        ]
    )
    ny = np.array(
        [
            len(tree_y.query_ball_point(y[i], np.nextafter(eps[i], 0), p=np.inf)) - 1
            for i in range(n)
        ]
    )
    return digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))


@pytest.mark.parametrize("dx", [1, 8])  # dx=1: tree counts; dx=8: brute-force counts
def test_ksg_mutual_info_equals_ckdtree_reference(dx):
    rng = np.random.default_rng(dx)
    x = rng.standard_normal((600, dx))
    y = x[:, :1] ** 2 + 0.5 * rng.standard_normal((600, 1))
    assert ksg_mutual_info(x, y, k=4) == pytest.approx(
        reference_ksg_with_ckdtree(x, y, 4), abs=1e-9
    )


# ----------------------------------------------------------------------------- accuracy

# Calibration of kl_entropy - H_true for this covariance family (12 other seeds, k=3):
#   d=1  N=8000: bias +0.003 sd 0.012     d=2  N=8000: bias -0.007 sd 0.018
#   d=5  N=4000: bias -0.068 sd 0.024     d=10 N=4000: bias +0.152 sd 0.063
#   d=20 N=4000: bias +1.643 sd 0.134
# The d>=5 biases are the known finite-N bias of Kozachenko-Leonenko (it decays like
# N^(-2/d), so more N does not remove it at d=20 within a test budget); the allowance is
# |bias| + 2 sd (the sd includes covariance-to-covariance variation).
KL_GAUSSIAN_CASES = {
    # d: (N, calibration_sd, bias_allowance)
    1: (8000, 0.012, 0.0),
    2: (8000, 0.018, 0.0),
    5: (4000, 0.024, 0.068 + 2 * 0.024),
    10: (4000, 0.063, 0.152 + 2 * 0.063),
    20: (4000, 0.134, 1.643 + 2 * 0.134),
}


@pytest.mark.parametrize("d", sorted(KL_GAUSSIAN_CASES))
def test_kl_entropy_matches_gaussian_closed_form(d):
    n, cal_sd, allowance = KL_GAUSSIAN_CASES[d]
    rng = np.random.default_rng(1000 + d)
    cov = random_covariance(d, rng)
    # closed form: H = d/2 log(2 pi e) + 1/2 log det cov
    expected = 0.5 * d * np.log(2 * np.pi * np.e) + 0.5 * np.linalg.slogdet(cov)[1]
    assert gaussian_entropy(cov) == pytest.approx(expected, rel=1e-12)
    estimates = [
        kl_entropy(rng.multivariate_normal(np.zeros(d), cov, size=n), k=3)
        for _ in range(4)
    ]
    ok, mean, tol = within_spread(estimates, expected, cal_sd, allowance)
    assert ok, (
        f"d={d}: mean estimate {mean:.4f} vs closed form {expected:.4f} (tol {tol:.4f})"
    )


def test_kl_entropy_max_norm_matches_gaussian_closed_form():
    # the max-norm (NPEET/KSG) convention estimates the same entropy: d=3, N=4000
    # calibration (10 other seeds): bias -0.014, sd 0.030
    rng = np.random.default_rng(7)
    cov = random_covariance(3, rng)
    expected = 1.5 * np.log(2 * np.pi * np.e) + 0.5 * np.linalg.slogdet(cov)[1]
    estimates = [
        kl_entropy(rng.multivariate_normal(np.zeros(3), cov, 4000), metric="chebyshev")
        for _ in range(4)
    ]
    ok, mean, tol = within_spread(estimates, expected, 0.03)
    assert ok, f"mean {mean:.4f} vs {expected:.4f} (tol {tol:.4f})"


# Uniform on a box with sides a: H = sum log a_i.  Calibration (12 seeds): d=1 N=2000 bias
# -0.005 sd 0.016; d=2 N=4000 bias +0.018 sd 0.012 (boundary effect, grows like N^(-1/d)).
@pytest.mark.parametrize(
    "d, n, cal_sd, allowance",
    [(1, 2000, 0.016, 0.0), (2, 4000, 0.012, 0.018 + 2 * 0.012)],
)
def test_kl_entropy_matches_uniform_box_closed_form(d, n, cal_sd, allowance):
    rng = np.random.default_rng(50 + d)
    sides = rng.uniform(0.5, 2.0, d)
    expected = np.log(sides).sum()
    estimates = [kl_entropy(rng.uniform(size=(n, d)) * sides) for _ in range(4)]
    ok, mean, tol = within_spread(estimates, expected, cal_sd, allowance)
    assert ok, f"d={d}: mean {mean:.4f} vs {expected:.4f} (tol {tol:.4f})"


# KSG calibration (8 seeds, N=4000, k=3): sd 0.010 (rho=0), 0.008 (rho=0.9); bias < 0.002.
@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6, 0.9])
def test_ksg_mutual_info_matches_gaussian_closed_form(rho):
    rng = np.random.default_rng(int(rho * 10))
    expected = -0.5 * np.log(1 - rho**2)
    estimates = []
    for _ in range(4):
        x = rng.standard_normal(4000)
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(4000)
        estimates.append(ksg_mutual_info(x, y, k=3))
    ok, mean, tol = within_spread(estimates, expected, 0.010)
    assert ok, f"rho={rho}: mean {mean:.4f} vs {expected:.4f} (tol {tol:.4f})"


def test_ksg_mutual_info_of_independent_non_gaussian_pair_is_near_zero():
    # uniform x and 2-D exponential y, independent: I = 0.  Calibration (10 seeds, N=4000):
    # bias +0.006, sd 0.013.
    rng = np.random.default_rng(11)
    estimates = [
        ksg_mutual_info(rng.uniform(size=4000), rng.exponential(size=(4000, 2)))
        for _ in range(4)
    ]
    ok, mean, tol = within_spread(estimates, 0.0, 0.013)
    assert ok, f"mean {mean:.4f} vs 0 (tol {tol:.4f})"


# Calibration (6 seeds): D=3 N=16000 bias +0.003 sd 0.007; D=5 N=4000 bias +0.005 sd 0.021.
@pytest.mark.parametrize("dim, n, cal_sd", [(3, 16000, 0.007), (5, 4000, 0.021)])
def test_sphere_kl_entropy_of_uniform_sphere_is_log_surface_area(dim, n, cal_sd):
    rng = np.random.default_rng(dim)
    # closed form: log |S^{D-1}| = log(2 pi^{D/2} / Gamma(D/2))
    expected = np.log(2) + dim / 2 * np.log(np.pi) - gammaln(dim / 2)
    assert uniform_sphere_entropy(dim) == pytest.approx(expected, rel=1e-12)
    results = []
    radius = 2.5
    for _ in range(3):
        g = rng.standard_normal((n, dim))
        results.append(
            sphere_kl_entropy(
                radius * g / np.linalg.norm(g, axis=1, keepdims=True), k=1
            )
        )
    ok, mean, tol = within_spread([r.sphere for r in results], expected, cal_sd)
    assert ok, f"D={dim}: mean {mean:.4f} vs {expected:.4f} (tol {tol:.4f})"
    for r in results:  # full entropy = sphere entropy + (D-1) log r
        assert r.mean_radius == pytest.approx(radius, rel=1e-12)
        assert r.full == pytest.approx(r.sphere + (dim - 1) * np.log(radius), rel=1e-12)
        assert r.sphere == pytest.approx(r.angular + r.log_jacobian, rel=1e-12)


def test_knn_graph_entropy_difference_of_scaled_gaussians_is_d_log_scale_ratio():
    # independent samples at scales s1=1 and s2=3 in d=5: S(s2) - S(s1) = d log(s2/s1) since
    # the dropped additive constant cancels.  Calibration (10 seeds): bias -0.007, sd 0.052.
    d, s1, s2 = 5, 1.0, 3.0
    rng = np.random.default_rng(5)
    diffs = [
        knn_graph_entropy(s2 * rng.standard_normal((1000, d)), k=50)
        - knn_graph_entropy(s1 * rng.standard_normal((1000, d)), k=50)
        for _ in range(4)
    ]
    ok, mean, tol = within_spread(diffs, d * np.log(s2 / s1), 0.052)
    assert ok, f"mean {mean:.4f} vs {d * np.log(s2 / s1):.4f} (tol {tol:.4f})"


def test_knn_graph_entropy_matches_paper_formula_on_small_window():
    # S_K = d [log L_K - (d-1)/d log N], L_K = sum of the K smallest entries of each row of
    # the full distance matrix (the zero self-distance included), written out independently.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 6))
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    for k, d in ((10, 6), (50, 5)):
        length = np.sort(dist, axis=1)[:, :k].sum()
        expected = d * (np.log(length) - (d - 1) / d * np.log(len(x)))
        assert knn_graph_entropy(
            x, k=k, intrinsic_dim=None if d == 6 else d
        ) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "estimator",
    [
        kl_entropy,
        knn_graph_entropy,
        sphere_kl_entropy,
        lambda x: ksg_mutual_info(x, x[:, ::-1]),
    ],
)
def test_nan_input_is_refused(estimator):
    x = np.random.default_rng(0).standard_normal((100, 3))
    x[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimator(x)


def test_k_not_below_sample_count_is_refused_with_k_and_n():
    x = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match=r"k=10 with N=10"):
        kl_entropy(x, k=10)
    with pytest.raises(ValueError, match=r"k=12 with N=10"):
        ksg_mutual_info(x[:, 0], x[:, 1], k=12)
    with pytest.raises(ValueError, match=r"k=11 with N=10"):
        knn_graph_entropy(x, k=11)
    with pytest.raises(ValueError, match=r"k must be an integer >= 1"):
        knn_distances(x, 0)


def test_wrong_shapes_and_options_are_refused():
    x = np.zeros((4, 3, 2))
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        kl_entropy(x)
    with pytest.raises(ValueError, match="same number of samples"):
        ksg_mutual_info(np.ones((10, 1)), np.ones((9, 1)))
    with pytest.raises(ValueError, match="metric must be one of"):
        kl_entropy(
            np.random.default_rng(0).standard_normal((20, 2)), metric="manhattan"
        )
    with pytest.raises(ValueError, match="D >= 2"):
        sphere_kl_entropy(np.ones((20, 1)))
    with pytest.raises(ValueError, match="dims_x"):
        gaussian_mutual_info(np.eye(3), 3)
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_entropy(-np.eye(2))


def test_duplicates_warn_and_give_a_finite_entropy():
    x = np.random.default_rng(0).standard_normal((300, 2))
    x = np.concatenate([x, x[:10]])
    with pytest.warns(RuntimeWarning, match="duplicates"):
        value = kl_entropy(x, k=1)
    assert np.isfinite(value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning without duplicates
        kl_entropy(x[:300], k=1)


def test_brute_force_of_200k_rows_stays_in_bounded_chunks():
    # the chunk size bounds the distance block to CPU_CHUNK_BYTES (no N x N matrix)
    n = 200_000
    chunk = knn_module._default_chunk_size(n, torch.device("cpu"))
    assert 12 * n * chunk <= knn_module.CPU_CHUNK_BYTES
    assert chunk >= 64


@pytest.mark.parametrize("scale", [1e155, 1e-160, 1e300, 1e-300])
def test_kl_entropy_is_scale_covariant_at_extreme_scales(scale):
    """H(aX) = H(X) + d ln a for any finite scale: no overflow to inf, no false
    duplicates from underflow (tolerance: float64 rounding of the rescaling)."""
    x = np.random.default_rng(0).standard_normal((2000, 3))
    h = kl_entropy(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "duplicates" warning, no jitter
        h_scaled = kl_entropy(x * scale)
    assert abs(h_scaled - 3 * np.log(scale) - h) < 1e-9


@pytest.mark.parametrize("scale", [1e155, 1e-160])
def test_ksg_mutual_info_is_scale_invariant_at_extreme_scales(scale):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 1))
    y = x + 0.5 * rng.standard_normal((2000, 1))
    assert abs(ksg_mutual_info(x * scale, y * scale) - ksg_mutual_info(x, y)) < 1e-9


def test_complex_input_is_refused():
    x = np.random.default_rng(0).standard_normal((100, 2)) + 1j
    with pytest.raises(ValueError, match="x must be real-valued, got complex"):
        kl_entropy(x)
    with pytest.raises(ValueError, match="real-valued"):
        ksg_mutual_info(x, x.real)
