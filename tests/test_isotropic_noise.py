"""The isotropic-noise model of the ideal-gas paper: the stationary radius of each
protocol against the discretised closed form within its sampling error, the fixed-sphere
protocol keeps |x| = r0, its pressure and energy against theory, and the KL entropy of
the stationary samples against the exact vMF entropy.

Tolerances: 4 standard errors across independent replicas, plus the stated bound of the
terms the closed form leaves out (relative O(eta^2 sigma^2) from the fluctuations of the
norm, O(eta) for the energy of the discrete chain on the sphere)."""

import numpy as np
import pytest
import torch

from thermo_nb.dynamics.isotropic_noise import (
    simulate_isotropic_gas,
    stationary_sphere_entropies,
)
from thermo_nb.theory import ideal_gas as ig

D = 3
ETA = np.array([0.03, 0.06])
WD = np.array([0.03, 0.1])


def _run(protocol, b=WD, **kw):
    torch.set_num_threads(1)
    return simulate_isotropic_gas(
        protocol,
        ETA,
        b,
        dim=D,
        n_replicas=128,
        n_steps=8000,
        burn_in=5000,
        seed=3,
        **kw,
    )


def _g_theory(t, dim=D, sigma_sq=1.0):
    return (dim - 1) * sigma_sq + ig.vmf_mean_sin_sq(1 / t, dim)


def test_fixed_elr_stationary_radius_matches_the_norm_recursion():
    run = _run("fixed_elr")
    e, w = np.meshgrid(ETA, WD, indexing="ij")
    t = ig.temperature_fixed_elr(e, 1.0)
    expected = ig.discrete_radius_sq_fixed_elr(e, w, _g_theory(t), exact=True)
    tol = 4 * run.r2_se + (e**2) * expected  # + relative eta^2 sigma^2 (fluctuations)
    assert np.all(np.abs(run.r2_mean - expected) <= tol), (run.r2_mean, expected, tol)
    assert np.all(run.drift_z < 5)


def test_fixed_lr_stationary_radius_matches_the_norm_recursion():
    run = _run("fixed_lr")
    e, w = np.meshgrid(ETA, WD, indexing="ij")
    t = ig.temperature_fixed_lr(e, w, 1.0, D)
    expected = ig.discrete_radius_fixed_lr(e, w, _g_theory(t), exact=True) ** 2
    eta_eff = e / expected
    tol = 4 * run.r2_se + eta_eff**2 * expected
    assert np.all(np.abs(run.r2_mean - expected) <= tol), (run.r2_mean, expected, tol)


def test_fixed_sphere_keeps_the_norm_and_measures_the_pressure():
    radii = np.array([0.5, 2.0])
    run = _run("fixed_sphere", b=radii)
    # |x| = r0 at every stored snapshot (projection after every step)
    norms = np.linalg.norm(run.snapshots, axis=-1)
    np.testing.assert_allclose(norms, radii[None, :, None] * np.ones_like(norms), 1e-12)
    np.testing.assert_allclose(run.r2_mean, (radii**2)[None, :] + 0 * run.r2_mean)
    # pressure: p = (sqrt(1 + eta^2 |g_unit|^2) - 1)/(eta r0^2) ~ eta G / (2 r0^2)
    e, r = np.meshgrid(ETA, radii, indexing="ij")
    t = ig.temperature_fixed_elr(e, 1.0)
    p_disc = ig.discrete_pressure_fixed_sphere(e, _g_theory(t), r)
    tol = 4 * run.pressure_se + 0.5 * e**2 * (D + 1) * p_disc  # + O(eta^2 G) of sqrt
    assert np.all(np.abs(run.pressure_mean - p_disc) <= tol)
    # energy of the direction: vMF with kappa = 1/T, up to the O(eta) step bias
    u_vmf = ig.vmf_energy(1 / t, D)
    assert np.all(np.abs(run.energy_mean - u_vmf) <= 4 * run.energy_se + e * u_vmf)


def test_stationary_entropy_matches_the_vmf_entropy():
    run = _run("fixed_sphere", b=np.array([1.0]))
    ent = stationary_sphere_entropies(run.snapshots, n_groups=4)
    t = ig.temperature_fixed_elr(ETA, 1.0)
    s_vmf = ig.vmf_entropy(1 / t, D)
    # tolerance: 4 s.e. + the O(eta) step bias of the variance, (D-1)/2 * log(1 + eta)
    tol = 4 * ent["sphere_se"][:, 0] + (D - 1) / 2 * np.log1p(ETA)
    assert np.all(np.abs(ent["sphere"][:, 0] - s_vmf) <= tol)
    assert np.allclose(ent["mean_radius"], 1.0)


@pytest.mark.parametrize("optimizer,momentum", [("sgd", 0.5), ("adamw", 0.0)])
def test_momentum_and_adamw_runs_are_finite(optimizer, momentum):
    run = simulate_isotropic_gas(
        "fixed_lr",
        [0.02],
        [0.05],
        dim=4,
        n_replicas=16,
        n_steps=400,
        optimizer=optimizer,
        momentum=momentum,
        seed=0,
    )
    assert np.isfinite(run.r2_mean).all() and np.isfinite(run.energy_mean).all()
    assert run.snapshots.shape == (1, 1, 16 * 8, 4)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="protocol"):
        simulate_isotropic_gas("nope", [0.1], [0.1], dim=3)
    with pytest.raises(ValueError, match="momentum"):
        simulate_isotropic_gas("fixed_lr", [0.1], [0.1], dim=3, momentum=1.0)
    with pytest.raises(ValueError, match="positive"):
        simulate_isotropic_gas("fixed_lr", [0.1], [-0.1], dim=3)
