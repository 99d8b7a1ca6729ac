"""Stationarity gate, areal velocity and steady-state entropy production from the current,
against linear Gauss-Markov chains whose answers are known in closed form; the stationary
regression network of the Seifert chapter (sec. 3b)."""

import numpy as np
import pytest

from thermo_nb.dynamics import sgd_linear as sl
from thermo_nb.dynamics import sgd_stationary as ss
from thermo_nb.estimators import stationary_state as st

N_SIGMA = 4.0


def _ness_chain(n_rep=400, n_steps=400, seed=0):
    """A 2-D non-reversible chain x' = A x + N(0, Q) started in its stationary law."""
    H = np.array([[1.0, 0.0], [0.0, 0.3]])
    R = np.array([[np.cos(0.6), -np.sin(0.6)], [np.sin(0.6), np.cos(0.6)]])
    Sigma = R @ np.diag([1.0, 0.1]) @ R.T  # does not commute with H
    A, Q = sl.sgd_quadratic_linear_process(H, Sigma, 0.1, 1)
    C = sl.discrete_lyapunov_covariance(A, Q)
    g = np.random.default_rng(seed)
    x0 = g.multivariate_normal(np.zeros(2), C, size=n_rep)
    return A, Q, C, sl.simulate_linear_chain(A, Q, x0, n_steps, g)


def test_stationarity_gate_passes_a_stationary_chain_and_fails_a_drifting_one():
    A, Q, C, X = _ness_chain()
    assert st.stationarity_gate(X)["passed"]
    drift = X + np.linspace(0, 2.0, X.shape[0])[:, None, None] * np.sqrt(np.diag(C))
    g = st.stationarity_gate(drift)
    assert not g["passed"] and g["mean_shift"] > 0.2
    grow = X * np.linspace(1.0, 1.5, X.shape[0])[:, None, None]
    g = st.stationarity_gate(grow)
    assert not g["passed"] and g["cov_drift"] > 0.1


def test_areal_velocity_matches_linear_chain_closed_form():
    # discrete chain x' = A x + xi: <x x'^T> = C A^T, so Omega = (C A^T - A C)/2, which is
    # (A_c C - C A_c^T)/2 for the drift matrix A_c = (I - A)/dt of dx = -A_c x dt + ...
    A, Q, C, X = _ness_chain()
    Om = st.areal_velocity_matrix(X, center=np.zeros(2))
    expected = 0.5 * (C @ A.T - A @ C)
    stats = st.linear_chain_statistics(X)
    reps = [
        st.linear_chain_from_statistics(stats, np.bincount(i, minlength=X.shape[1]))[
            "Omega"
        ][0, 1]
        for i in np.random.default_rng(1).integers(0, X.shape[1], (50, X.shape[1]))
    ]
    assert abs(Om[0, 1] - expected[0, 1]) < N_SIGMA * np.std(reps)
    assert np.allclose(Om, -Om.T)


def test_entropy_production_from_current_equals_linear_sde_rate():
    # continuum: Omega = (A C - C A^T)/2 with A C + C A^T = 2D gives the closed-form rate
    from thermo_nb.estimators.entropy_production import (
        linear_sde_entropy_production_rate,
        linear_sde_stationary_covariance,
    )

    A = np.array([[1.0, 0.5], [-0.3, 2.0]])
    D = np.array([[1.0, 0.2], [0.2, 0.5]])
    C = linear_sde_stationary_covariance(A, D)
    Om = 0.5 * (A @ C - C @ A.T)
    assert st.entropy_production_from_current(Om, D, C) == pytest.approx(
        linear_sde_entropy_production_rate(A, D), rel=1e-10
    )
    # equilibrium (zero current) gives zero
    assert st.entropy_production_from_current(np.zeros((2, 2)), D, C) == 0


def test_fitted_chain_recovers_exact_entropy_production_per_step():
    A, Q, C, X = _ness_chain()
    A_h, Q_h, c = st.fit_linear_chain(X)
    exact = sl.linear_chain_entropy_production_per_step(A, Q)
    stats = st.linear_chain_statistics(X)
    f = st.linear_chain_from_statistics(stats)
    # same least-squares fit up to the centring convention (pooled mean of pairs)
    assert np.allclose(f["A"], A_h, atol=1e-4) and np.allclose(f["Q"], Q_h, rtol=1e-3)
    est = sl.linear_chain_entropy_production_per_step(A_h, Q_h)
    M = X.shape[1]
    g = np.random.default_rng(2)
    boot = []
    for _ in range(40):
        fb = st.linear_chain_from_statistics(
            stats, np.bincount(g.integers(0, M, M), minlength=M)
        )
        boot.append(sl.linear_chain_entropy_production_per_step(fb["A"], fb["Q"]))
    assert abs(est - exact) < N_SIGMA * np.std(boot, ddof=1)


def test_gaussian_chain_entropy_production_obeys_the_ift():
    A, Q, C, X = _ness_chain()
    s = st.gaussian_chain_entropy_production(X, A, Q, np.zeros(2))
    seg = s.reshape(-1, 10, s.shape[1]).sum(1).ravel()
    w = np.exp(-seg)
    assert abs(w.mean() - 1) < N_SIGMA * w.std() / np.sqrt(w.size)
    assert s.mean() == pytest.approx(
        sl.linear_chain_entropy_production_per_step(A, Q), rel=0.1
    )


def test_bump_net_gradient_matches_finite_differences():
    x, y = ss.gaussian_bump_data(0, n=40)
    w = np.random.default_rng(3).standard_normal(7)
    g = ss.bump_net_gradient(w, x, y, 0.01)[0]
    h = 1e-6
    fd = [
        (
            ss.bump_net_loss(w + h * e, x, y, 0.01)
            - ss.bump_net_loss(w - h * e, x, y, 0.01)
        )[0]
        / (2 * h)
        for e in np.eye(7)
    ]
    assert np.allclose(g, fd, rtol=1e-6, atol=1e-9)
    idx = np.random.default_rng(4).integers(0, 40, (3, 5))
    W = np.tile(w, (3, 1))
    fast = ss._batch_mean_gradient(W, x[idx], y[idx], 0.01)
    slow = ss.bump_net_per_example_gradients(W, x[idx], y[idx], 0.01).mean(1)
    assert np.allclose(fast, slow, atol=1e-13)


def test_minibatch_noise_covariance_matches_sampled_batches():
    G = np.random.default_rng(5).standard_normal((30, 2)) * [1.0, 3.0]
    g = np.random.default_rng(6)
    for replacement in (True, False):
        if replacement:
            idx = g.integers(0, 30, (40000, 4))
        else:
            idx = np.argsort(g.random((40000, 30)), axis=1)[:, :4]
        emp = np.cov(G[idx].mean(1), rowvar=False)
        th = ss.minibatch_noise_covariance(G, 4, replacement=replacement)
        assert np.allclose(emp, th, rtol=0.05, atol=0.01 * th.max())


def test_sgd_without_replacement_has_less_epoch_noise_at_the_minimum():
    x, y = ss.gaussian_bump_data(0, n=40)
    wmin = ss.bump_net_minimum(np.random.default_rng(1).standard_normal(7), x, y, 0.01)
    assert np.abs(ss.bump_net_gradient(wmin, x, y, 0.01)).max() < 1e-10
    rng = np.random.default_rng(2)
    w0 = np.tile(wmin, (200, 1))
    one_epoch = {
        s: ss.simulate_bump_net_sgd(w0, x, y, 0.1, 4, 10, rng, s, 0.01, record_every=10)
        for s in ("with", "without")
    }
    spread = {s: np.var(W[-1] - wmin) for s, W in one_epoch.items()}
    # one epoch without replacement: the minibatch noise sums to zero at fixed w, O(lr^2)
    assert spread["without"] < 0.5 * spread["with"]
