"""Specifications of thermo_nb.theory.scaling, thermo_nb.theory.energy,
thermo_nb.analysis.batch_size, thermo_nb.theory.flops and thermo_nb.models.transformer."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from thermo_nb.analysis.batch_size import batch_gradient_norms, fit_steps_vs_batch
from thermo_nb.models.transformer import TinyTransformerLM
from thermo_nb.theory.energy import energy_per_flop, landauer_energy_per_bit
from thermo_nb.theory.flops import count_training_flops, flops_per_token_per_parameter
from thermo_nb.theory.scaling import (
    CHINCHILLA_CONSTANTS,
    chinchilla_loss,
    compute_optimal_allocation,
    fit_chinchilla_huber,
    synthetic_chinchilla_data,
)


@pytest.mark.parametrize("name", sorted(CHINCHILLA_CONSTANTS))
@pytest.mark.parametrize("C", [1e20, 5.76e23, 1e26])
def test_closed_form_optimum_matches_numerical_minimisation_of_L_N_C_over_6N(name, C):
    c = CHINCHILLA_CONSTANTS[name]
    res = minimize_scalar(
        lambda u: float(chinchilla_loss(math.exp(u), C / (6 * math.exp(u)), name)),
        bounds=(math.log(1e6), math.log(1e14)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    out = compute_optimal_allocation(C, name)
    assert float(out["N_opt"]) == pytest.approx(math.exp(res.x), rel=1e-6)
    # the closed form written out: N = G (C/6)^a, G = (alpha A/(beta B))^(1/(alpha+beta))
    G = (c.alpha * c.A / (c.beta * c.B)) ** (1 / (c.alpha + c.beta))
    assert float(out["N_opt"]) == pytest.approx(
        G * (C / 6) ** (c.beta / (c.alpha + c.beta)), rel=1e-12
    )
    # budget and first-order condition alpha A / N^alpha = beta B / D^beta
    N, D = float(out["N_opt"]), float(out["D_opt"])
    assert 6 * N * D == pytest.approx(C, rel=1e-10)
    assert c.alpha * c.A / N**c.alpha == pytest.approx(
        c.beta * c.B / D**c.beta, rel=1e-9
    )


def test_huber_fit_recovers_known_constants_from_noise_free_synthetic_data():
    truth = CHINCHILLA_CONSTANTS["besiroglu_refit"]
    d = synthetic_chinchilla_data("besiroglu_refit", n=80, noise=0.0, seed=1)
    # a corner of Hoffmann's grid of starts (a, b in {5, 10}, e in {0, 0.5}, alpha = beta = 0.5)
    starts = np.array(
        [
            [a, b, e, 0.5, 0.5]
            for a in (5.0, 10.0)
            for b in (5.0, 10.0)
            for e in (0.0, 0.5)
        ]
    )
    fit = fit_chinchilla_huber(d["N"], d["D"], d["L"], reduction="sum", starts=starts)
    assert fit["alpha"] == pytest.approx(truth.alpha, abs=2e-3)
    assert fit["beta"] == pytest.approx(truth.beta, abs=2e-3)
    assert fit["E"] == pytest.approx(truth.E, rel=2e-3)
    assert fit["A"] == pytest.approx(truth.A, rel=0.05)
    assert fit["B"] == pytest.approx(truth.B, rel=0.05)


def test_mean_reduced_huber_fit_is_a_worse_minimiser_of_the_summed_loss():
    d = synthetic_chinchilla_data("besiroglu_refit", n=120, noise=0.01, seed=2)
    starts = np.array(
        [
            [0.0, 0.0, 0.0, 0.5, 0.5],
            [5.0, 5.0, 0.5, 0.5, 0.5],
            [10.0, 10.0, 0.0, 1.0, 1.0],
        ]
    )
    s = fit_chinchilla_huber(d["N"], d["D"], d["L"], reduction="sum", starts=starts)
    m = fit_chinchilla_huber(d["N"], d["D"], d["L"], reduction="mean", starts=starts)
    from thermo_nb.theory.scaling import _huber_objective

    args = (np.log(d["N"]), np.log(d["D"]), np.log(d["L"]), 1e-3, False)
    assert (
        _huber_objective(m["theta"], *args)[0] >= _huber_objective(s["theta"], *args)[0]
    )
    assert m["objective"] * 120 == pytest.approx(_huber_objective(m["theta"], *args)[0])


def test_published_unrounded_constants_give_about_40B_at_gopher_compute():
    n = float(compute_optimal_allocation(5.76e23, "hoffmann_unrounded")["N_opt"])
    assert 35e9 < n < 45e9


def test_landauer_energy_is_kT_ln2():
    assert landauer_energy_per_bit(300.0) == pytest.approx(
        1.380649e-23 * 300 * math.log(2), rel=1e-12
    )
    assert landauer_energy_per_bit(300.0) == pytest.approx(2.8710e-21, rel=1e-4)


def test_energy_per_flop_is_board_power_over_dense_peak():
    assert energy_per_flop("H100 SXM5", "bf16") == pytest.approx(700 / 989.4e12)
    assert energy_per_flop("A100 SXM4", "bf16", mfu=0.4) == pytest.approx(
        400 / (0.4 * 312e12)
    )


def test_fit_steps_vs_batch_recovers_mccandlish_law_within_4_standard_errors():
    rng = np.random.default_rng(0)
    B = 2.0 ** np.arange(0, 13)
    S = 50 * (1 + 300 / B) * np.exp(0.05 * rng.standard_normal(B.size))
    f = fit_steps_vs_batch(B, S)
    assert abs(math.log(f["B_crit"] / 300)) < 4 * f["log_B_crit_se"]
    assert f["rms_log_residual"] < f["rms_log_residual_perfect"]
    assert f["E_min"] == pytest.approx(f["S_min"] * f["B_crit"])


def test_batch_gradient_norm_matches_G2_plus_trace_sigma_over_m():
    gen = torch.Generator().manual_seed(0)
    n, P = 4000, 200
    g = torch.randn(n, P, generator=gen, dtype=torch.float64) * 2.0 + 0.3
    out = batch_gradient_norms(
        g, [1, 4, 16, 64, 256], n_draws=400, generator=torch.Generator().manual_seed(1)
    )
    # closed form E|g_m|^2 = |G|^2 + tr(Sigma)/m with population G and Sigma
    G = g.mean(0)
    expected = float(G @ G) + float(((g - G) ** 2).sum() / n) / out["m"]
    z = (out["norm_sq_mean"] - expected) / out["norm_sq_se"]
    assert np.all(np.abs(z) < 4)
    assert np.all(out["norm_mean"] <= out["mean_of_norms"])  # Jensen


def test_bad_inputs_raise_value_errors_naming_the_parameter():
    with pytest.raises(ValueError, match="params"):
        chinchilla_loss(1e9, 1e10, "nope")
    with pytest.raises(ValueError, match="reduction"):
        fit_chinchilla_huber([1e9] * 6, [1e10] * 6, [2.0] * 6, reduction="median")
    with pytest.raises(ValueError, match="C"):
        compute_optimal_allocation(-1.0)
    with pytest.raises(ValueError, match="gpu"):
        energy_per_flop("TPU")


@pytest.mark.parametrize("in_f,out_f,batch", [(7, 5, 3), (32, 16, 10)])
def test_flop_counter_on_linear_layer_is_2_per_weight_forward_and_6_with_backward(
    in_f, out_f, batch
):
    lin = torch.nn.Linear(in_f, out_f, bias=False)
    x = torch.randn(batch, in_f, requires_grad=True)
    fl = count_training_flops(lin, x)
    assert fl["forward"] == 2 * batch * in_f * out_f
    assert fl["total"] == 6 * batch * in_f * out_f
    k = flops_per_token_per_parameter(lin, x, batch)
    assert k["k"] == 6.0 and k["k_forward"] == 2.0
    # input without gradient (a first layer): the backward needs only dL/dW
    x0 = torch.randn(batch, in_f)
    assert count_training_flops(lin, x0)["total"] == 4 * batch * in_f * out_f


def test_transformer_forward_flops_match_weight_matrices_plus_attention():
    V, d, L, T, b = 50, 32, 2, 16, 3
    lm = TinyTransformerLM(V, d, L, 4, T)
    fl = count_training_flops(lm, torch.randint(0, V, (b, T)))
    # per token: 2 x (12 d^2 per block + d V head) + 2 x 2 T d per block (QK^T and AV)
    per_token = 2 * (12 * d * d * L + d * V) + 4 * L * T * d
    assert fl["forward"] == per_token * b * T
    assert fl["backward"] == 2 * fl["forward"]


def test_steps_to_target_sweep_records_divergence_instead_of_crashing():
    from thermo_nb.analysis.batch_size import steps_to_target_vs_batch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    out = steps_to_target_vs_batch(
        x,
        y,
        hidden=8,
        batch_sizes=[4, 32],
        lrs=[0.5, 1e4],
        target_loss=0.4,
        max_steps=1000,
        n_seeds=2,
        seed=0,
        show_progress=False,
    )
    assert out["diverged"][:, 1, :].all()  # lr = 1e4 blows up: flagged, not raised
    assert np.isnan(out["steps"][:, 1, :]).all()
    assert np.isfinite(out["best_steps"]).all()  # lr = 0.5 reaches the target
    assert (out["best_lr"] == 0.5).all()
