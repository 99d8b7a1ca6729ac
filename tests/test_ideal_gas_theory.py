"""Closed forms of the ideal-gas chapter: von Mises-Fisher normaliser, energy and entropy
against numerical integration and their D = 3 and large-kappa limits; the radius laws
satisfy p V = (D-1) T / 2; the norm recursion relaxes with tau = 1/(4 eta lambda)."""

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln

from thermo_nb.estimators.knn import uniform_sphere_entropy
from thermo_nb.theory import ideal_gas as ig


def _log_area(m):
    """log |S^{m-1}| (sphere in R^m)."""
    return math.log(2) + 0.5 * m * math.log(math.pi) - gammaln(0.5 * m)


def _cos_density(kappa, dim):
    """Density of t = <nu, x> under vMF on S^{D-1}: C e^{kappa t} |S^{D-2}| (1-t^2)^..."""
    log_c = float(ig.vmf_log_normaliser(kappa, dim))
    la = _log_area(dim - 1)
    return lambda t: math.exp(
        log_c + kappa * t + la + 0.5 * (dim - 3) * math.log(max(1 - t * t, 1e-300))
    )


@pytest.mark.parametrize("dim", [3, 5, 16])
@pytest.mark.parametrize("kappa", [0.5, 5.0, 40.0])
def test_vmf_normaliser_integrates_to_one(dim, kappa):
    total, err = quad(
        _cos_density(kappa, dim), -1, 1, points=[1 - 1 / kappa], limit=200
    )
    assert abs(total - 1) < 1e-8 + 10 * err


@pytest.mark.parametrize("dim", [3, 5, 16])
@pytest.mark.parametrize("kappa", [0.5, 5.0, 40.0])
def test_vmf_energy_and_entropy_match_numerical_integration(dim, kappa):
    f = _cos_density(kappa, dim)
    pts = [1 - 1 / kappa]
    mean_t = quad(lambda t: t * f(t), -1, 1, points=pts, limit=200)[0]
    log_c = float(ig.vmf_log_normaliser(kappa, dim))
    # S = -E log p = -log C - kappa E t   (p = C e^{kappa t} w.r.t. the surface measure)
    entropy = -log_c - kappa * mean_t
    assert float(ig.vmf_energy(kappa, dim)) == pytest.approx(1 - mean_t, abs=1e-9)
    assert float(ig.vmf_entropy(kappa, dim)) == pytest.approx(entropy, abs=1e-8)


def test_vmf_d3_closed_forms():
    k = np.array([0.3, 2.0, 25.0, 400.0])
    a = 1 / np.tanh(k) - 1 / k
    s = np.log(4 * np.pi * np.sinh(k) / k) - k / np.tanh(k) + 1
    np.testing.assert_allclose(ig.vmf_mean_resultant(k, 3), a, rtol=1e-12)
    np.testing.assert_allclose(ig.vmf_entropy(k, 3), s, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dim", [3, 16])
def test_vmf_large_kappa_limit(dim):
    # corrections are O(1/kappa) relative (energy) and O(D^2/kappa) nats (entropy)
    for kappa in (1e3, 1e4):
        t = 1 / kappa
        u, u_large = ig.vmf_energy(kappa, dim), ig.vmf_energy_large_kappa(t, dim)
        assert abs(u / u_large - 1) < 2 * dim / kappa
        s, s_large = ig.vmf_entropy(kappa, dim), ig.vmf_entropy_large_kappa(t, dim)
        assert abs(s - s_large) < dim**2 / kappa


@pytest.mark.parametrize("dim", [3, 8])
def test_vmf_small_kappa_is_uniform(dim):
    assert float(ig.vmf_entropy(1e-6, dim)) == pytest.approx(
        uniform_sphere_entropy(dim), abs=1e-9
    )


def test_vmf_mean_sin_sq_is_the_second_moment():
    kappa, dim = 7.0, 5
    f = _cos_density(kappa, dim)
    e_sin2 = quad(lambda t: (1 - t * t) * f(t), -1, 1, limit=200)[0]
    assert float(ig.vmf_mean_sin_sq(kappa, dim)) == pytest.approx(e_sin2, rel=1e-9)


def test_kappa_from_energy_inverts_the_energy():
    k = np.array([0.7, 12.0, 3000.0])
    np.testing.assert_allclose(
        ig.vmf_kappa_from_energy(ig.vmf_energy(k, 4), 4), k, rtol=1e-8
    )
    assert np.isnan(ig.vmf_kappa_from_energy(1.5, 3))


def test_radius_laws_are_the_ideal_gas_law():
    d, s2 = 101, 0.03
    eta, wd = np.array([1e-3, 1e-2, 0.1]), np.array([1e-3, 3e-2, 0.1])
    # fixed ELR: T = eta s2 / 2, p = wd, V = r^2 / 2
    t = ig.temperature_fixed_elr(eta, s2)
    r2 = ig.ideal_gas_radius_sq_fixed_elr(eta, wd, s2, d)
    np.testing.assert_allclose(wd * r2 / 2, (d - 1) / 2 * t, rtol=1e-12)
    # fixed LR: T from eta, wd; the same law with r^4 = (D-1) eta s2 / (2 wd)
    t = ig.temperature_fixed_lr(eta, wd, s2, d)
    r = ig.ideal_gas_radius_fixed_lr(eta, wd, s2, d)
    np.testing.assert_allclose(wd * r**2 / 2, (d - 1) / 2 * t, rtol=1e-12)
    # and T = eta_eff s2 / 2 with eta_eff = eta / r^2
    np.testing.assert_allclose(t, eta / r**2 * s2 / 2, rtol=1e-12)
    # pressure on the sphere
    np.testing.assert_allclose(
        ig.ideal_gas_pressure(t, r, d) * r**2 / 2, (d - 1) / 2 * t, rtol=1e-12
    )


def test_discrete_radius_is_the_fixed_point_of_the_norm_recursion():
    eta, wd, g = 0.05, 0.03, 4.0
    u = 1.0
    for _ in range(200000):  # fixed ELR: u' = u (1 - eta wd u)^2 + eta^2 g u
        u = u * (1 - eta * wd * u) ** 2 + eta**2 * g * u
    assert u == pytest.approx(
        float(ig.discrete_radius_sq_fixed_elr(eta, wd, g, exact=True)), rel=1e-10
    )
    u = 1.0
    for _ in range(200000):  # fixed LR: u' = (1 - eta wd)^2 u + eta^2 g / u
        u = (1 - eta * wd) ** 2 * u + eta**2 * g / u
    r = float(ig.discrete_radius_fixed_lr(eta, wd, g, exact=True))
    assert math.sqrt(u) == pytest.approx(r, rel=1e-10)
    # the first-order form agrees with the exact fixed point to O(eta^2 g)
    u_exact = float(ig.discrete_radius_sq_fixed_elr(eta, wd, g, exact=True))
    u_first = float(ig.discrete_radius_sq_fixed_elr(eta, wd, g))
    assert u_first == pytest.approx(u_exact, rel=eta**2 * g)


def test_norm_relaxation_time_of_the_mean_recursion():
    eta, wd, g = 0.02, 0.01, 3.0
    r4_star = eta * g / (wd * (2 - eta * wd))
    u, gaps = 0.2, []
    for _ in range(6000):
        gaps.append(u * u - r4_star)
        u = (1 - eta * wd) ** 2 * u + eta**2 * g / u
    gaps = np.abs(np.array(gaps))
    t = np.arange(gaps.size)
    sel = (gaps < 0.5 * gaps[0]) & (gaps > 1e-3 * gaps[0])
    tau = -1 / np.polyfit(t[sel], np.log(gaps[sel]), 1)[0]
    # continuous limit 1/(4 eta wd); the discrete chain differs at O(eta wd)
    assert tau * 4 * eta * wd == pytest.approx(1.0, abs=2 * eta * wd + 1e-3)
    assert float(ig.norm_relaxation_time("fixed_lr", eta, wd)) == 1 / (4 * eta * wd)


@pytest.mark.parametrize("protocol", ["fixed_elr", "fixed_lr"])
def test_maxwell_slopes_are_derivatives_of_the_large_kappa_entropy(protocol):
    d, s2, h = 11, 0.5, 1e-6

    def s_full(le, lw):
        eta, wd = math.exp(le), math.exp(lw)
        if protocol == "fixed_elr":
            t = ig.temperature_fixed_elr(eta, s2)
            r2 = ig.ideal_gas_radius_sq_fixed_elr(eta, wd, s2, d)
        else:
            t = ig.temperature_fixed_lr(eta, wd, s2, d)
            r2 = ig.ideal_gas_radius_fixed_lr(eta, wd, s2, d) ** 2
        return float(ig.vmf_entropy_large_kappa(t, d) + (d - 1) / 2 * math.log(r2))

    x, y = math.log(0.01), math.log(0.03)
    d_eta = (s_full(x + h, y) - s_full(x - h, y)) / (2 * h)
    d_wd = (s_full(x, y + h) - s_full(x, y - h)) / (2 * h)
    pred = ig.maxwell_slopes(protocol, d)
    assert d_eta == pytest.approx(pred["d_log_eta"], abs=1e-5)
    assert d_wd == pytest.approx(pred["d_log_wd"], abs=1e-5)


def test_gibbs_potential_is_minimal_at_the_target():
    d, s2 = 3, 1.0
    eta = np.geomspace(0.01, 0.1, 41)
    wd = np.geomspace(0.01, 0.1, 41)
    e, w = np.meshgrid(eta, wd, indexing="ij")
    t = ig.temperature_fixed_elr(e, s2)
    kappa = 1 / t
    r2 = ig.ideal_gas_radius_sq_fixed_elr(e, w, s2, d)
    s_full = ig.vmf_entropy(kappa, d) + (d - 1) / 2 * np.log(r2)
    i, j = 17, 29
    g = ig.gibbs_potential(ig.vmf_energy(kappa, d), s_full, r2 / 2, t[i, j], w[i, j])
    assert np.unravel_index(np.argmin(g), g.shape) == (i, j)
