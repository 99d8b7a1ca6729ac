"""EBM training: the Gaussian EBM learns its maximum-likelihood estimate, the work and
heat bookkeeping obeys the first law exactly, and probe chains obey Jarzynski."""

import math

import numpy as np
import torch

from thermo_nb.training.ebm import (
    gaussian_ebm_stationary_variance,
    probe_chain_work,
    train_gaussian_ebm_ensemble,
    train_mlp_ebm_ensemble,
)


def test_gaussian_ebm_learns_the_mle_with_the_closed_form_spread():
    kw = dict(
        n_datasets=8,
        n_noise=32,
        n_train=64,
        batch_size=16,
        n_chains=16,
        lr=0.1,
        tau=10,
        step=0.05,
        n_updates=300,
        init_std=0.1,
        seed=0,
    )
    r = train_gaussian_ebm_ensemble(**kw)
    u = (r["theta"][-1] - r["data_mean"]).reshape(8, 32, 2)
    v = gaussian_ebm_stationary_variance(0.1, 16, 16, math.exp(-0.5), 1.0, 1.0, 64)
    # the MLE of each training set is its mean: the replicas scatter around it with var v
    se_mean = math.sqrt(v / 32)
    assert (np.abs(u.mean(1)) <= 4.5 * se_mean).all()
    dof = 8 * 31 * 2
    v_hat = ((u - u.mean(1, keepdims=True)) ** 2).sum() / dof
    assert abs(v_hat - v) <= 4 * v * math.sqrt(2 / dof)


def test_stationary_variance_with_fresh_samples_is_the_ar1_formula():
    k, b, c = 0.2, 8, 4
    v = gaussian_ebm_stationary_variance(k, b, c, 0.0, 1.0, 1.0, None)
    assert abs(v - k * k * (1 / b + 1 / c) / (1 - (1 - k) ** 2)) < 1e-12


def test_first_law_and_eq44_hold_exactly_in_the_bookkeeping():
    r = train_mlp_ebm_ensemble(
        n_replicas=3,
        hidden=8,
        depth=1,
        n_updates=12,
        n_chains=32,
        batch_size=16,
        grid_n=24,
        probe_window=4,
        record_every=4,
        show_progress=False,
    )
    w, q = r["work_exact"].sum(0), r["heat_exact"].sum(0)
    du = r["cond_entropy"][-1] - r["cond_entropy"][0]
    assert np.abs(w + q - du).max() < 1e-10
    assert (r["work_exact"] >= -1e-12).all()  # each work term is a KL divergence
    ws, qs = r["work_samples"].sum(0), r["heat_samples"].sum(0)
    dus = r["energy_samples"][-1] - r["energy_samples"][0]
    assert np.abs(ws + qs - dus).max() < 1e-10
    d_i = r["l_info"][-1] - r["l_info"][0]
    d_sx = r["marg_entropy"][-1] - r["marg_entropy"][0]
    assert np.abs(d_i - ((d_sx - q) - w)).max() < 1e-10  # Eq. 44
    assert abs(r["l_info"][0]).max() < 1e-12  # same theta_0: no information at t = 0


def test_mala_probe_chains_obey_jarzynski_for_a_stiffening_trap():
    # E_i = a_i x^2 / 2 with a from 1 to 2: Delta F = ln Z_0 - ln Z_n = ln(a_n/a_0)/2
    a = torch.linspace(1.0, 2.0, 21, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(20000, 1, generator=g, dtype=torch.float64)
    out = probe_chain_work(
        lambda i: lambda x: 0.5 * a[i] * (x**2).sum(-1), 20, x0, 2, 0.3, g
    )
    w = out["work"].numpy()
    z = np.exp(-w)
    se = z.std(ddof=1) / math.sqrt(z.size)
    assert abs(z.mean() - math.exp(-0.5 * math.log(2.0))) <= 4 * se
    assert w.mean() - 0.5 * math.log(2.0) > 0  # dissipated work is positive
