"""Cheap parts of the Seifert chapter's new experiments, against closed forms."""

import numpy as np

from thermo_nb.chapters import seifert_experiments as ex


def test_quadratic_ness_sigma_is_zero_iff_hessian_and_noise_commute():
    r = ex.quadratic_iff_exact(seed=0, n_pairs=30)
    assert r["commuting"].max() < 1e-10
    assert r["noncommuting"].min() > 1e-10


def test_detailed_ft_slope_is_one_for_gaussian_entropy_production_with_var_twice_mean():
    # a Gaussian Delta s_tot with Var = 2 <Delta s_tot> obeys the DFT exactly
    s = np.random.default_rng(0).normal(1.5, np.sqrt(3.0), 400_000)
    d = ex.detailed_ft_slope(s)
    assert abs(d["slope"] - 1) < 4 * d["slope_se"]
    d2 = ex.detailed_ft_slope(np.random.default_rng(1).normal(1.5, 1.0, 400_000))
    assert abs(d2["slope"] - 3.0) < 4 * d2["slope_se"]  # Var = mean: slope 2 mu / var


def test_schmiedl_seifert_optimal_protocol_beats_the_linear_one():
    r = ex.trap_protocol_work(seed=0, n_traj=20_000, dt=2e-3)
    for name in ("linear", "optimal"):
        W = r["W_" + name]
        assert abs(W.mean() - r["closed_" + name]) < 4 * W.std() / np.sqrt(W.size)
    assert r["W_linear"].mean() > r["W_optimal"].mean()
