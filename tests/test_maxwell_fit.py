"""The paper's quadratic-surface fit of the Maxwell relations recovers known slopes of
synthetic entropy surfaces; the zero-step extrapolation and the relaxation-time fit
recover known parameters."""

import numpy as np
import pytest

from thermo_nb.analysis.maxwell import fit_maxwell_surface, zero_step_extrapolation
from thermo_nb.analysis.relaxation import exponential_relaxation_time

ETA = np.geomspace(1e-3, 1e-1, 9)
WD = np.geomspace(1e-3, 1e-1, 7)


def _surface(coef, noise=0.0, seed=0):
    x, y = np.meshgrid(np.log(ETA), np.log(WD), indexing="ij")
    s = coef[0] + coef[1] * x + coef[2] * y + coef[3] * x * x + coef[4] * y * y
    s = s + coef[5] * x * y
    return s + noise * np.random.default_rng(seed).standard_normal(s.shape)


@pytest.mark.parametrize("protocol", ["fixed_elr", "fixed_lr"])
def test_exact_ideal_gas_surfaces_give_zero_error(protocol):
    d = 24408
    h = (d - 1) / 2
    coef = (
        [5.0, 2 * h, -h, 0, 0, 0] if protocol == "fixed_elr" else [5.0, h, 0, 0, 0, 0]
    )
    fit = fit_maxwell_surface(ETA, WD, _surface(coef), dim=d, protocol=protocol)
    expected = -1.0 if protocol == "fixed_elr" else 1.0
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.max_rel_error < 1e-9
    assert fit.linear == pytest.approx(expected, abs=1e-9)
    assert fit.centre == pytest.approx(expected, abs=1e-9)


def test_noisy_surface_recovers_its_coefficients_within_errors():
    coef = np.array([3.0, 1.2, -0.8, 0.05, -0.03, 0.02])
    fits = []
    for seed in range(40):  # coverage of the 3-sigma intervals over independent noise
        s = _surface(coef, noise=0.1, seed=seed)
        fits.append(fit_maxwell_surface(ETA, WD, s, dim=3, protocol="fixed_lr"))
    z = np.array([(f.coef - coef) / np.sqrt(np.diag(f.cov)) for f in fits])
    assert np.mean(np.abs(z) < 3) > 0.95
    # the combination (dS/dlog eta - dS/dlog wd)/h at the grid centre
    xc, yc = np.log(ETA).mean(), np.log(WD).mean()
    true = (coef[1] + 2 * coef[3] * xc + coef[5] * yc) - (
        coef[2] + 2 * coef[4] * yc + coef[5] * xc
    )
    zc = np.array([(f.centre - true) / f.centre_se for f in fits])
    assert np.mean(np.abs(zc) < 3) > 0.9
    # weighted version with the true standard errors gives the same centre
    s = _surface(coef, noise=0.1, seed=99)
    f_w = fit_maxwell_surface(
        ETA, WD, s, dim=3, protocol="fixed_lr", entropy_se=np.full(s.shape, 0.1)
    )
    f_u = fit_maxwell_surface(ETA, WD, s, dim=3, protocol="fixed_lr")
    assert f_w.centre == pytest.approx(f_u.centre, rel=1e-10)
    assert abs(f_w.centre - true) < 4 * f_w.centre_se


def test_nan_grid_points_are_left_out():
    s = _surface([1.0, 2.0, -1.0, 0, 0, 0])
    s[0, 0] = np.nan
    fit = fit_maxwell_surface(ETA, WD, s, dim=3, protocol="fixed_elr")
    assert fit.centre == pytest.approx(-1.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 7"):
        fit_maxwell_surface(ETA[:2], WD[:3], s[:2, :3], dim=3, protocol="fixed_elr")


def test_zero_step_extrapolation_recovers_the_intercept():
    rng = np.random.default_rng(1)
    t = np.repeat(np.geomspace(0.01, 0.1, 6), 3)
    se = np.full(t.size, 2e-3)
    zs = []
    for _ in range(50):
        y = 0.004 + 0.8 * t - 3.0 * t**2 + se * rng.standard_normal(t.size)
        c0, c0_se, _, _ = zero_step_extrapolation(t, y, se, degree=2)
        zs.append((c0 - 0.004) / c0_se)
    assert np.mean(np.abs(zs) < 3) > 0.9


def test_relaxation_time_of_an_exponential():
    t = np.geomspace(1, 5000, 120)
    tau = np.array([[100.0, 800.0]])
    y = 2.0 + 3.0 * np.exp(-t / tau[..., None])
    fitted = exponential_relaxation_time(t, y, np.array([[2.0, 2.0]]))
    np.testing.assert_allclose(fitted, tau, rtol=1e-6)
