"""SGD on a quadratic as a linear Gauss-Markov chain; the subspace entropy estimator for SGD."""

import numpy as np
import pytest
import torch
from scipy import linalg

from thermo_nb.dynamics.sgd_entropy import (
    subspace_entropy_production,
    top_variance_subspace,
)
from thermo_nb.dynamics.sgd_linear import (
    commutator_norm,
    discrete_lyapunov_covariance,
    linear_chain_entropy_production_per_step,
    linear_chain_mean_squared_distance,
    linear_regression_gradient_noise_covariance,
    linear_regression_sgd,
    linear_sde_probability_current,
    sgd_quadratic_linear_process,
    simulate_linear_chain,
)
from thermo_nb.estimators.entropy_production import medium_entropy_kernel_ratio


def kernel_ratio_sum(X, A, Q):
    """Cumulative kernel-ratio medium entropy of a time-homogeneous chain, all pairs at once."""
    X = torch.as_tensor(X)
    k, n, d = X.shape[0] - 1, X.shape[1], X.shape[2]
    pairs = torch.stack([X[:-1], X[1:]]).reshape(2, k * n, d)
    At = torch.as_tensor(A.T)
    inc = medium_entropy_kernel_ratio(pairs, lambda x, i: x @ At, torch.as_tensor(Q))
    return inc.reshape(k, n).sum(0).numpy()


def rot(a):
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


H = np.diag([1.0, 0.2])
SIGMA_TILTED = rot(0.6) @ np.diag([1.0, 0.1]) @ rot(0.6).T


def test_commuting_noise_gives_zero_entropy_production():
    # Sigma = H^2 + H commutes with H: detailed balance, sigma = 0 up to round-off
    A, Q = sgd_quadratic_linear_process(H, H @ H + H, 0.1, 4)
    assert commutator_norm(H, H @ H + H) < 1e-14
    assert abs(linear_chain_entropy_production_per_step(A, Q)) < 1e-10


def test_discrete_entropy_production_tends_to_linear_sde_rate_at_small_lr():
    # sigma_SDE = tr[(A_c - D C^-1)^T D^-1 (A_c - D C^-1) C], A_c C + C A_c^T = 2D (ref. sec. 1.5)
    for lr in (0.01, 0.001):
        A, Q = sgd_quadratic_linear_process(H, SIGMA_TILTED, lr, 8)
        Ac, D = lr * H, Q / 2
        C = linalg.solve_continuous_lyapunov(Ac, 2 * D)
        M = Ac - D @ np.linalg.inv(C)
        sigma_sde = np.trace(M.T @ np.linalg.inv(D) @ M @ C)
        ep = linear_chain_entropy_production_per_step(A, Q)
        assert ep > 0
        assert ep == pytest.approx(sigma_sde, rel=3 * lr)  # O(lr) discretisation gap


def test_kernel_ratio_average_matches_exact_stationary_entropy_production():
    A, Q = sgd_quadratic_linear_process(H, SIGMA_TILTED, 0.1, 4)
    C = discrete_lyapunov_covariance(A, Q)
    np.testing.assert_allclose(C, A @ C @ A.T + Q, atol=1e-14)
    rng = np.random.default_rng(0)
    n, k = 4000, 50
    X = simulate_linear_chain(
        A, Q, rng.multivariate_normal(np.zeros(2), C, size=n), k, rng
    )
    sm = kernel_ratio_sum(X, A, Q) / k
    exact = linear_chain_entropy_production_per_step(A, Q)
    assert abs(sm.mean() - exact) < 4 * sm.std() / np.sqrt(n)


def test_probability_current_vanishes_at_equilibrium_and_is_divergence_free():
    pts = np.random.default_rng(1).standard_normal((50, 2))
    _, j = linear_sde_probability_current(
        H, 0.5 * np.eye(2), pts
    )  # isotropic: equilibrium
    assert np.abs(j).max() < 1e-12
    A, D = H, 0.5 * SIGMA_TILTED
    _, j = linear_sde_probability_current(A, D, pts)
    assert np.abs(j).max() > 1e-3
    # stationarity: div j = 0, checked by central differences
    e = 1e-5
    div = sum(
        (
            linear_sde_probability_current(A, D, pts + e * np.eye(2)[i])[1][:, i]
            - linear_sde_probability_current(A, D, pts - e * np.eye(2)[i])[1][:, i]
        )
        / (2 * e)
        for i in range(2)
    )
    assert np.abs(div).max() < 1e-6


def test_linear_regression_noise_covariance_is_sigma2_h_for_homoscedastic_noise():
    # at theta*, g_i = x_i eps_i: Sigma = E[eps^2 x x^T] = s^2 H (independent noise)
    rng = np.random.default_rng(2)
    n = 200_000
    X = rng.standard_normal((n, 2)) * np.sqrt([1.0, 0.25])
    y = X @ np.array([1.0, -0.5]) + 0.5 * rng.standard_normal(n)
    Sigma = linear_regression_gradient_noise_covariance(X, y, np.array([1.0, -0.5]))
    np.testing.assert_allclose(
        Sigma, 0.25 * np.diag([1.0, 0.25]), atol=0.25 * 6 / np.sqrt(n) * 2
    )


def test_real_minibatch_sgd_stationary_covariance_matches_lyapunov():
    rng = np.random.default_rng(3)
    n = 4000
    X = rng.standard_normal((n, 2)) * np.sqrt([1.0, 0.25])
    y = X @ np.array([1.0, -0.5]) + 0.5 * rng.standard_normal(n)
    Hd = X.T @ X / n
    ts = np.linalg.solve(Hd, X.T @ y / n)
    A, Q = sgd_quadratic_linear_process(
        Hd, linear_regression_gradient_noise_covariance(X, y, ts), 0.1, 8
    )
    C = discrete_lyapunov_covariance(A, Q)
    T = linear_regression_sgd(
        X, y, ts + rng.multivariate_normal(np.zeros(2), C, 1000), 0.1, 8, 300, rng
    )[100:]
    Ce = np.cov((T - ts).reshape(-1, 2), rowvar=False)
    # 201 x 1000 correlated samples (tau ~ 1/(lr h_min) = 40 steps): ~5 % relative spread
    np.testing.assert_allclose(np.diag(Ce), np.diag(C), rtol=0.1)


def test_mean_squared_distance_closed_form_matches_simulation():
    a, q, s0 = np.array([0.9, 1.0]), np.array([0.01, 0.02]), 0.05
    rng = np.random.default_rng(4)
    rec = [1, 10, 100]
    X = simulate_linear_chain(
        np.diag(a),
        np.diag(q),
        np.sqrt(s0) * rng.standard_normal((20000, 2)),
        100,
        rng,
        record_at=[0] + rec,
    )
    R2 = ((X[1:] - X[0]) ** 2).sum(2)
    exact = linear_chain_mean_squared_distance(a, q, s0, rec)
    assert np.all(np.abs(R2.mean(1) - exact) < 4 * R2.std(1) / np.sqrt(20000))


def test_subspace_estimator_matches_exact_entropy_production_of_linear_chain():
    # isotropic Langevin-like chain with known kernel and Gaussian densities (exact reference)
    rng = np.random.default_rng(5)
    Hd, eta, T = np.diag([1.0, 0.5, 0.2]), 0.05, 0.5
    A, Q = np.eye(3) - eta * Hd, 2 * eta * T * np.eye(3)
    n, k = 4000, 30
    m0, s0 = np.array([0.5, -0.3, 0.2]), 0.2
    X = simulate_linear_chain(
        A, Q, m0 + np.sqrt(s0) * rng.standard_normal((n, 3)), k, rng
    )
    res = subspace_entropy_production(X, X @ Hd, eta, 1, top_variance_subspace(X, 3))
    sm = kernel_ratio_sum(X, A, Q)
    m, C = m0.copy(), s0 * np.eye(3)
    for _ in range(k):
        m, C = A @ m, A @ C @ A.T + Q

    def logp(x, m, C):
        r = x - m
        return (
            -0.5 * np.einsum("ni,ij,nj->n", r, np.linalg.inv(C), r)
            - 0.5 * np.linalg.slogdet(2 * np.pi * C)[1]
        )

    exact = sm + logp(X[0], m0, s0 * np.eye(3)) - logp(X[-1], m, C)
    diff = res["delta_s_tot"] - exact
    # same trajectories: the estimator's error (Stratonovich vs kernel ratio, fitted densities)
    # must be small compared with the spread of Delta s_tot itself
    assert abs(diff.mean()) < 0.1 * exact.std()
    np.testing.assert_allclose(np.diag(res["Q"]), 2 * eta * T, rtol=0.03)  # ~0.4 % s.e.


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="spectral radius"):
        discrete_lyapunov_covariance(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="positive definite"):
        linear_chain_entropy_production_per_step(0.5 * np.eye(2), np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="lr"):
        sgd_quadratic_linear_process(H, H, -1.0, 4)
    with pytest.raises(ValueError, match="k must"):
        top_variance_subspace(np.zeros((3, 10, 4)), 0)


def test_discrete_ift_holds_for_gaussian_sgd_on_quadratic_transient():
    # exact kernel ratio + exact p_k = N(m_k, C_k): <exp(-Delta s_tot)> = 1 at finite lr
    from scipy.stats import multivariate_normal as mvn

    from thermo_nb.dynamics.sgd_linear import linear_chain_gaussian_moments
    from thermo_nb.estimators.entropy_production import ift_average

    A, Q = sgd_quadratic_linear_process(H, SIGMA_TILTED, 0.2, 4)
    C = discrete_lyapunov_covariance(A, Q)
    rng = np.random.default_rng(6)
    m0, C0, k = np.array([0.1, -0.05]), C / 4, 20
    X = simulate_linear_chain(A, Q, rng.multivariate_normal(m0, C0, size=20000), k, rng)
    sm = kernel_ratio_sum(X, A, Q)
    ms, Cs = linear_chain_gaussian_moments(A, Q, m0, C0, k)
    tot = sm + mvn(ms[0], Cs[0]).logpdf(X[0]) - mvn(ms[-1], Cs[-1]).logpdf(X[-1])
    mean, se = ift_average(torch.as_tensor(tot))
    assert tot.mean() > 0
    assert abs(mean - 1) < 4 * se


def test_recorders_return_consistent_shapes_and_distances():
    from thermo_nb.dynamics.sgd_entropy import (
        record_distance_from_init,
        record_ensemble_trajectory,
    )
    from thermo_nb.models import MLP
    from thermo_nb.training.ensemble import EnsembleTrainer

    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    tr = EnsembleTrainer(lambda: MLP(5, 4, 3, depth=1), 6, x, y, lr=0.1, batch_size=8)
    P = tr.flat_params().shape[1]
    run = record_ensemble_trajectory(
        tr, 20, 5, coords=np.arange(0, P, 2), grad_examples=16
    )
    assert run["theta"].shape == (5, 6, (P + 1) // 2) == run["grad"].shape
    assert run["steps"].tolist() == [0, 5, 10, 15, 20]
    start = tr.flat_params()
    dist = record_distance_from_init(tr, 30, 5)
    assert dist["R"].shape == (len(dist["steps"]), 6) and dist["steps"][-1] == 30
    np.testing.assert_allclose(
        dist["R"][-1], (tr.flat_params() - start).norm(dim=1).numpy(), rtol=1e-6
    )


def test_distance_run_interrupted_midway_resumes_bit_identically(tmp_path):
    from thermo_nb.dynamics.sgd_entropy import record_distance_from_init
    from thermo_nb.models import MLP
    from thermo_nb.runtime import ResultCache
    from thermo_nb.training.ensemble import EnsembleTrainer

    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))

    def trainer():
        return EnsembleTrainer(
            lambda: MLP(5, 4, 3, depth=1), 4, x, y, lr=0.1, batch_size=8, seed=3
        )

    ref = record_distance_from_init(trainer(), 200, 8)
    cache, key = ResultCache(tmp_path), {"run": "test"}
    broken = trainer()
    real_step, calls = broken.step, [0]

    def step_then_crash():
        calls[0] += 1
        if calls[0] > 120:
            raise KeyboardInterrupt("simulated kill")
        return real_step()

    broken.step = step_then_crash
    with pytest.raises(KeyboardInterrupt):
        record_distance_from_init(broken, 200, 8, cache=cache, params=key)
    resumed_trainer = trainer()
    steps = []
    orig = resumed_trainer.step
    resumed_trainer.step = lambda: (steps.append(1), orig())[1]
    resumed = record_distance_from_init(
        resumed_trainer, 200, 8, cache=cache, params=key
    )
    assert 0 < len(steps) < 200, "the re-run continued from a checkpoint"
    np.testing.assert_array_equal(resumed["R"], ref["R"])
    np.testing.assert_array_equal(resumed["loss"], ref["loss"])
