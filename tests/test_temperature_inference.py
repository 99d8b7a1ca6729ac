"""The interval (convex-hull) temperature inference of the free-energy paper and the
3-D sphere toy, against closed forms."""

import math

import numpy as np
import pytest
import torch

from thermo_nb.analysis.fits import fit_growth_law
from thermo_nb.dynamics.sphere_toy import (
    UP_MIN_LOSS,
    simulate_sphere_toy,
    sphere_toy_points,
    toy_gradient_statistics,
    toy_losses_and_gradients,
)
from thermo_nb.estimators.temperature import (
    free_energy_curves,
    infer_temperature,
    smooth_in_log_lr,
    temperature_intervals,
    trajectory_temperature,
)


def _gaussian_like(c=0.3, d=10, n=15, ratio=1.5):
    """A synthetic stationary family with a known temperature T = c * eta:
    S = (d/2) ln eta (Gaussian entropy of a covariance ~ eta), U = U0 + (d/2) c eta,
    so dU/dS = (dU/deta)/(dS/deta) = c eta.  U(S) = U0 + (d/2) c e^{2S/d} is convex."""
    eta = 1e-3 * ratio ** np.arange(n)
    return eta, 0.5 * d * np.log(eta), 0.7 + 0.5 * d * c * eta


def test_intervals_recover_the_known_slope_of_a_convex_curve():
    c, ratio = 0.3, 1.5
    eta, S, U = _gaussian_like(c=c, ratio=ratio)
    iv = temperature_intervals(S, U)
    assert iv.consistent.all()
    # each bound is a secant slope: c times the logarithmic mean of neighbouring etas
    h = math.log(ratio)
    logmean = lambda a, b: (b - a) / math.log(b / a)  # noqa: E731
    for i in range(1, eta.size - 1):
        assert math.isclose(iv.t_low[i], c * logmean(eta[i - 1], eta[i]), rel_tol=1e-9)
        assert math.isclose(iv.t_high[i], c * logmean(eta[i], eta[i + 1]), rel_tol=1e-9)
        # the interval brackets the true derivative dU/dS = c eta
        assert iv.t_low[i] <= c * eta[i] <= iv.t_high[i]
    # geometric mean of the two logarithmic means: c eta * 2 sinh(h/2) / h exactly
    expected = c * eta[1:-1] * 2 * math.sinh(h / 2) / h
    assert np.allclose(iv.temperature[1:-1], expected, rtol=1e-9)
    # power law T = b eta^k without the end points: k = 1, b = c * 2 sinh(h/2)/h
    fit = fit_growth_law(eta[1:-1], iv.temperature[1:-1], "power")
    assert math.isclose(fit.b, 1.0, abs_tol=1e-9)
    assert math.isclose(math.exp(fit.a), c * 2 * math.sinh(h / 2) / h, rel_tol=1e-8)


def test_end_points_take_the_one_sided_bound():
    eta, S, U = _gaussian_like()
    iv = temperature_intervals(S, U)
    assert iv.t_low[0] == iv.t_high[0] and iv.t_low[-1] == iv.t_high[-1]


def test_a_point_above_the_convex_hull_has_no_temperature_unless_slack_covers_it():
    eta, S, U = _gaussian_like()
    bump = U.copy()
    bump[7] += 0.05
    iv = temperature_intervals(S, bump)
    assert not iv.consistent[7] and math.isnan(iv.temperature[7])
    assert iv.consistent[np.r_[0:6, 9:15]].all()
    assert temperature_intervals(S, bump, slack=0.05).consistent.all()


def test_free_energy_minimiser_is_the_point_whose_temperature_is_used():
    eta, S, U = _gaussian_like()
    iv = temperature_intervals(S, U)
    F = free_energy_curves(U, S, iv.temperature[1:-1])
    assert (F.argmin(axis=1) == np.arange(1, eta.size - 1)).all()


def test_smoothing_keeps_constants_and_interior_linear_functions():
    eta = np.logspace(-3, -1, 21)  # uniform in ln eta, spacing 0.23 < 0.3
    lin = 2.0 + 0.5 * np.log(eta)
    assert np.allclose(smooth_in_log_lr(eta, lin)[1:-1], lin[1:-1], atol=1e-12)
    assert np.allclose(smooth_in_log_lr(eta, np.full(21, 3.0)), 3.0)
    noisy = lin + np.random.default_rng(0).normal(0, 0.1, 21)
    sm = smooth_in_log_lr(eta, noisy)
    assert sm[0] == noisy[0] and sm[-1] == noisy[-1]
    assert np.std(sm[1:-1] - lin[1:-1]) < np.std(noisy[1:-1] - lin[1:-1])


def test_infer_temperature_restricts_the_range_after_smoothing():
    eta, S, U = _gaussian_like(n=20)
    out = infer_temperature(eta, U, S, lr_range=(eta[3], eta[15]), half_width=None)
    assert out["lrs"].size == 12 and out["consistent"].all()
    S_nan = S.copy()
    S_nan[5] = np.nan
    assert infer_temperature(eta, U, S_nan)["lrs"].size == 19


def test_trajectory_temperature_is_du_ds():
    t = np.linspace(0, 10, 101)
    U, S = np.exp(-t), -t  # dU/dS = e^{-t}
    T = trajectory_temperature(U, S, lag=2)
    assert np.isnan(T[:2]).all() and np.isnan(T[-2:]).all()
    # centred difference of e^{-t} over 2 dt = 0.2: sinh(0.2)/0.2 relative bias
    assert np.allclose(T[2:-2], np.exp(-t[2:-2]) * math.sinh(0.2) / 0.2, rtol=1e-12)


# ----------------------------------------------------------------------------- toy


def test_toy_gradients_match_autograd_and_are_tangent():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    pts = torch.as_tensor(sphere_toy_points("up"))
    losses, grads = toy_losses_and_gradients(x, pts)
    xr = x.clone().requires_grad_(True)
    for i in range(3):
        li = ((xr @ pts[i]) ** 2 / (xr * xr).sum(1)).sum()
        (gi,) = torch.autograd.grad(li, xr)
        assert torch.allclose(grads[:, i], gi, atol=1e-14)
    assert torch.allclose(
        (grads * x[:, None]).sum(-1), torch.zeros_like(losses), atol=1e-14
    )
    assert torch.allclose(losses, (x @ pts.T) ** 2)


def test_toy_minimum_and_snr_closed_forms():
    ez = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    up = toy_gradient_statistics(ez, torch.as_tensor(sphere_toy_points("up")))
    assert math.isclose(float(up["loss"]), UP_MIN_LOSS, rel_tol=1e-12)
    # UP: full gradient vanishes at e_z, per-sample ones do not -> SNR = 0
    assert (
        float(up["full_grad_norm"]) < 1e-15 and float(up["stoch_grad_mean_norm"]) > 0.1
    )
    assert float(up["snr"]) < 1e-14
    # OP near e_z: SNR = |g1 + g2| / |g1 - g2|, finite while both gradients vanish
    x = torch.tensor([0.01, 0.003, 1.0], dtype=torch.float64)
    x = x / x.norm()
    pts = torch.as_tensor(sphere_toy_points("op"))
    op = toy_gradient_statistics(x, pts)
    _, g = toy_losses_and_gradients(x, pts)
    expected = float((g[0] + g[1]).norm() / (g[0] - g[1]).norm())
    assert math.isclose(float(op["snr"]), expected, rel_tol=1e-12)
    # batch B with replacement: noise variance / B, SNR x sqrt(B)
    op4 = toy_gradient_statistics(x, pts, batch_size=4)
    assert math.isclose(float(op4["snr"]), 2 * expected, rel_tol=1e-12)


def test_toy_sgd_stays_on_sphere_and_up_loss_plateaus_above_minimum():
    out = simulate_sphere_toy(
        sphere_toy_points("up"),
        [0.01, 0.3],
        3000,
        n_replicas=50,
        seed=1,
        record_steps=[3000],
    )
    assert np.allclose(np.linalg.norm(out["x"], axis=-1), 1.0, atol=1e-12)
    loss = out["loss"][-1].mean(axis=1)
    # small lr: close to L_min; larger lr: a clearly higher plateau
    assert UP_MIN_LOSS <= loss[0] < UP_MIN_LOSS + 0.01 < loss[1]


def test_toy_batch_size_one_is_the_papers_update():
    # one step by hand: x <- (x - eta g_i)/|.| with the index drawn from the generator
    pts = sphere_toy_points("op")
    out = simulate_sphere_toy(pts, [0.2], 1, seed=5, record_steps=[1])
    gen = torch.Generator().manual_seed(5)
    i = int(torch.randint(2, (1, 1, 1), generator=gen).reshape(()))
    x0 = np.array([-0.8, 0.6, 0.1]) / np.linalg.norm([-0.8, 0.6, 0.1])
    p = x0 @ pts[i]
    x1 = x0 - 0.2 * 2 * p * (pts[i] - p * x0)
    assert np.allclose(out["x"][-1, 0, 0], x1 / np.linalg.norm(x1), atol=1e-15)


@pytest.mark.parametrize("bad", [dict(lrs=[-1.0]), dict(n_steps=0), dict(momentum=1.0)])
def test_toy_rejects_bad_input(bad):
    kw = dict(lrs=[0.1], n_steps=10)
    kw.update(bad)
    with pytest.raises(ValueError):
        simulate_sphere_toy(sphere_toy_points("op"), **kw)


def test_batched_window_entropy_equals_knn_graph_entropy():
    from thermo_nb.estimators.knn import knn_graph_entropy
    from thermo_nb.estimators.temperature import window_graph_entropies

    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 3, 60, 3))
    w /= np.linalg.norm(w, axis=-1, keepdims=True)
    batched = window_graph_entropies(w, k=10, intrinsic_dim=2)
    for i in range(2):
        for j in range(3):
            single = knn_graph_entropy(w[i, j], k=10, intrinsic_dim=2)
            assert math.isclose(batched[i, j], single, rel_tol=1e-10, abs_tol=1e-9)
    w[0, 0] = w[0, 0, :1]  # collapsed window -> -inf; NaN window -> NaN
    w[1, 2, 5] = np.nan
    out = window_graph_entropies(w, k=10, intrinsic_dim=2)
    assert out[0, 0] == -np.inf and np.isnan(out[1, 2]) and np.isfinite(out[0, 1])
