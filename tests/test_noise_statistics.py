"""SGD-noise statistics (thermo_nb.estimators.noise_statistics) against closed forms:
the minibatch-noise covariance of linear regression (1/B law and trace), AR(1) and white
sequences (autocorrelation and its permutation band), Gaussians of known spectrum
(participation ratio), and hand-computed KL divergences (conditional L-info)."""

import math

import numpy as np
import pytest
import torch

from thermo_nb import MLP, EnsembleTrainer, linear_regression_gradient_noise_covariance
from thermo_nb.estimators import noise_statistics as ns
from thermo_nb.models import unflatten_params


def half_mse(out, y):
    return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()


def regression_problem(n=400, d=5, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, d))
    y = x @ g.standard_normal(d) + 0.7 * g.standard_normal(n)
    return torch.tensor(x), torch.tensor(y)


def linear_model(d):
    return lambda: MLP(d, 1, 1, depth=0, bias=False).double()


@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_noise_variance_matches_trace_of_sigma_over_batch_size(batch_size):
    """At fixed theta (lr = 0), E|eta|^2 = tr(Sigma)/B exactly for batches drawn with
    replacement; Sigma from the closed form of linear regression."""
    x, y = regression_problem()
    d = x.shape[1]
    tr = EnsembleTrainer(
        linear_model(d),
        20,
        x,
        y,
        lr=0.0,
        batch_size=batch_size,
        loss_fn=half_mse,
        init="shared",
        seed=3,
    )
    theta = tr.flat_params()[0].numpy()
    sigma = linear_regression_gradient_noise_covariance(x.numpy(), y.numpy(), theta)
    res = ns.record_sgd_noise(tr, linear_model(d)(), 300, range(300))
    sq = res["noise_var"].ravel() * d  # |eta|^2 samples, independent (theta fixed)
    se = sq.std(ddof=1) / math.sqrt(sq.size)
    assert abs(sq.mean() - np.trace(sigma) / batch_size) <= 4 * se


def test_noise_variance_exponent_in_batch_size_is_minus_one_at_fixed_theta():
    x, y = regression_problem(seed=1)
    d = x.shape[1]
    bs, means = [1, 8, 64], []
    for b in bs:
        tr = EnsembleTrainer(
            linear_model(d),
            16,
            x,
            y,
            lr=0.0,
            batch_size=b,
            loss_fn=half_mse,
            init="shared",
            seed=5,
        )
        means.append(
            ns.record_sgd_noise(tr, linear_model(d)(), 200, range(200))["noise_var"]
        )
    slope = np.polyfit(np.log(bs), np.log([m.mean() for m in means]), 1)[0]
    # s.e. of each log-mean is std/(mean sqrt(n)); the slope's is below the largest of them
    se = max(m.std() / (m.mean() * math.sqrt(m.size)) for m in means)
    assert abs(slope + 1) <= 4 * se


def test_recorded_noise_is_eq19_with_the_trainers_own_minibatch():
    """theta_{t+1} = theta_t - r grad U_B(theta_t) + r eta(t): the recorded eta must come
    from the very minibatch the trainer used (mirror sampler in lockstep)."""
    x, y = regression_problem(n=100, d=3, seed=2)
    lr = 0.05
    tr = EnsembleTrainer(
        linear_model(3), 4, x, y, lr=lr, batch_size=5, loss_fn=half_mse
    )
    model = linear_model(3)()
    res = ns.record_sgd_noise(tr, model, 30, range(30), track=range(3))
    theta = res["tracked"]  # (30, M, 3)
    spec = tr.spec
    for t in range(29):
        p = unflatten_params(torch.tensor(theta[t]), spec)
        g_full, _ = ns.ensemble_gradients(model, p, x, y, loss_fn=half_mse)
        eta = (theta[t + 1] - theta[t]) / lr + g_full.numpy()
        np.testing.assert_allclose((eta**2).mean(1), res["noise_var"][t], rtol=1e-8)


def test_sgd_noise_is_full_minus_minibatch_gradient():
    g, gb = torch.randn(3, 7), torch.randn(3, 7)
    torch.testing.assert_close(ns.sgd_noise(g, gb), g - gb)
    with pytest.raises(ValueError, match="one shape"):
        ns.sgd_noise(g, gb[:, :3])


def ar1(a, t_len, m, p, seed):
    g = torch.Generator().manual_seed(seed)
    e = torch.empty(t_len, m, p, dtype=torch.float64)
    e[0] = torch.randn(m, p, generator=g, dtype=torch.float64)
    for t in range(1, t_len):
        xi = torch.randn(m, p, generator=g, dtype=torch.float64)
        e[t] = a * e[t - 1] + math.sqrt(1 - a * a) * xi
    return e


def test_autocorrelation_of_ar1_is_a_to_the_lag():
    a = 0.6
    out = ns.noise_autocorrelation(ar1(a, 200, 40, 20, seed=0), 6)
    assert out["rho"][0] == pytest.approx(1.0)
    z = np.abs(out["rho"] - a ** out["lags"])[1:] / out["se"][1:]
    assert z.max() <= 4


def test_white_noise_passes_and_ar1_fails_the_permutation_test():
    white = ns.noise_autocorrelation(
        ar1(0.0, 60, 30, 40, seed=1), 10, n_permutations=400
    )
    assert white["p_value"] >= 0.01
    lo, hi = white["band"][:, 1:]
    assert np.mean((white["rho"][1:] >= lo) & (white["rho"][1:] <= hi)) >= 0.8
    coloured = ns.noise_autocorrelation(
        ar1(0.2, 60, 30, 40, seed=2), 10, n_permutations=400
    )
    assert coloured["p_value"] < 0.01


def test_gram_and_raw_noise_give_the_same_autocorrelation():
    e = ar1(0.3, 25, 6, 5, seed=3)
    a = ns.noise_autocorrelation(e, 4)
    b = ns.noise_autocorrelation(gram=ns.noise_time_gram(e), max_lag=4)
    np.testing.assert_allclose(a["rho"], b["rho"])
    np.testing.assert_allclose(a["se"], b["se"])


@pytest.mark.parametrize("d, n", [(20, 400), (300, 100)])
def test_participation_ratio_is_unbiased_for_a_gaussian_of_known_spectrum(d, n):
    lam = 1.0 / (1.0 + np.arange(d)) ** 0.7
    true = lam.sum() ** 2 / (lam**2).sum()
    g = np.random.default_rng(4)
    est = [
        ns.participation_ratio(g.standard_normal((n, d)) * np.sqrt(lam))
        for _ in range(40)
    ]
    assert abs(np.mean(est) - true) <= 4 * np.std(est, ddof=1) / math.sqrt(len(est))
    assert ns.covariance_participation_ratio(lam) == pytest.approx(true)
    assert ns.covariance_participation_ratio(np.diag(lam)) == pytest.approx(true)


def test_population_participation_ratio_of_isotropic_and_rank_one_sets():
    pts = np.concatenate([np.eye(6), -np.eye(6)])  # covariance I/6: isotropic in 6 dims
    assert ns.participation_ratio(pts, population=True) == pytest.approx(6.0)
    line = np.outer(np.arange(10.0), [1.0, 2.0, -1.0])
    assert ns.participation_ratio(line, population=True) == pytest.approx(1.0)


def test_conditional_learned_information_matches_hand_computed_kl():
    p = torch.tensor([[[0.9, 0.1]], [[0.5, 0.5]]], dtype=torch.float64)
    info = ns.conditional_learned_information(p.log())
    pm = np.array([0.7, 0.3])
    kl1 = 0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3)
    kl2 = 0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)
    np.testing.assert_allclose(info[:, 0].numpy(), [kl1, kl2])
    assert pm.sum() == pytest.approx(1.0)


def test_classifier_metrics_and_relative_spread():
    lp = torch.log(torch.tensor([[[0.8, 0.2], [0.3, 0.7]], [[0.6, 0.4], [0.6, 0.4]]]))
    m = ns.classifier_metrics(lp, torch.tensor([0, 1]))
    np.testing.assert_allclose(m["accuracy"], [1.0, 0.5])
    np.testing.assert_allclose(
        m["loss"],
        [-(math.log(0.8) + math.log(0.7)) / 2, -(math.log(0.6) + math.log(0.4)) / 2],
        rtol=1e-6,
    )
    np.testing.assert_allclose(m["accuracy_se"], [0.0, 0.5])  # std (ddof 1) / sqrt(N)
    s = ns.ensemble_relative_spread(np.array([[1.0, 2.0, 3.0]]))
    assert s["relative"][0] == pytest.approx(0.5)


def test_implied_temperature_and_parameter_groups():
    assert ns.implied_temperature(0.2, 3.0) == pytest.approx(0.3)
    groups = ns.parameter_groups(MLP(3, 4, 2, depth=1), by="layer")
    assert [sum(s.stop - s.start for s in v) for v in groups.values()] == [16, 10]
    v, per = ns.noise_variance(torch.ones(2, 26) * 2, groups)
    assert per["layer 1"].tolist() == [4.0, 4.0] and v.tolist() == [4.0, 4.0]
