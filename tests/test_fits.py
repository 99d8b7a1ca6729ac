"""Growth-law fits recover known parameters and pick the law that generated the data."""

import numpy as np
import pytest

from thermo_nb.analysis.fits import best_growth_law, fit_growth_law, fit_growth_laws

T = np.arange(1.0, 401.0)


@pytest.mark.parametrize(
    "law,make,a,b",
    [
        ("exponential", lambda t, a, b: np.exp(a + b * t), 0.2, 0.004),
        ("logarithmic", lambda t, a, b: a + b * np.log(t), 1.0, 0.7),
        ("power", lambda t, a, b: np.exp(a) * t**b, -0.5, 0.35),
    ],
)
def test_each_law_is_recovered_and_selected_from_noisy_data(law, make, a, b):
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(40):
        R = make(T, a, b) * np.exp(0.02 * rng.standard_normal(T.size))
        fits = fit_growth_laws(T, R)
        assert best_growth_law(fits) == law
        f = fits[law]
        hits += f.b_ci[0] <= b <= f.b_ci[1]
    # 95 % OLS intervals: coverage of 40 draws is Binomial(40, .95); >= 33 fails w.p. < 1e-3
    assert hits >= 33


def test_replica_bootstrap_interval_covers_true_slope():
    # per-replica random-walk-like noise: R_r(t) = t^0.5 (1 + 0.1 z_r), b = 0.5 exactly
    rng = np.random.default_rng(0)
    R = (
        T**0.5
        * (1 + 0.1 * rng.standard_normal((64, 1)))
        * np.exp(0.01 * rng.standard_normal((64, T.size)))
    )
    f = fit_growth_law(T, R, "power", n_boot=300)
    assert f.ci_method == "bootstrap"
    assert f.b_ci[0] <= 0.5 <= f.b_ci[1]
    assert f.b_ci[1] - f.b_ci[0] < 0.01


def test_aic_is_jacobian_corrected_so_laws_compare_on_r():
    # a law fitted in ln R and the same law fitted in R would differ only by sum ln R;
    # check that the log-normal likelihood of R is what is reported
    rng = np.random.default_rng(5)
    R = np.exp(0.1 + 0.3 * np.log(T) + 0.05 * rng.standard_normal(T.size))
    f = fit_growth_law(T, R, "power")
    resid = np.log(R) - (f.a + f.b * np.log(T))
    s2 = resid @ resid / T.size
    ll = -0.5 * T.size * (np.log(2 * np.pi * s2) + 1) - np.log(R).sum()
    assert f.log_likelihood == pytest.approx(ll, rel=1e-10)
    assert f.aic == pytest.approx(6 - 2 * ll, rel=1e-10)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="law"):
        fit_growth_law(T, T, "quadratic")
    with pytest.raises(ValueError, match="R must be > 0"):
        fit_growth_law(T, T - 5, "power")
    with pytest.raises(ValueError, match="finite"):
        fit_growth_law(T, np.full(T.size, np.nan), "power")
    with pytest.raises(ValueError, match="t must be > 0"):
        fit_growth_law(T - 1, T, "logarithmic")
