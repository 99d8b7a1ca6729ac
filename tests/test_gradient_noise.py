"""Gradient-noise statistics against closed forms.

Reference problem used throughout: Gaussian linear regression, x ~ N(0, I_d),
y = w*.x + eps, eps ~ N(0, s^2), per-example loss l = (w.x - y)^2 / 2 at w = w* + delta.
Per-example gradient g = (delta.x - eps) x, so (Isserlis' theorem)

    G         = delta,                      |G|^2 = |delta|^2
    Sigma     = (|delta|^2 + s^2) I + delta delta^T
    tr(Sigma) = d (|delta|^2 + s^2) + |delta|^2
    B_simple  = tr(Sigma) / |G|^2.

With d = 20, |delta|^2 = 1, s = 1: tr(Sigma) = 41 and B_simple = 41.
"""

import math

import numpy as np
import pytest
import torch

from thermo_nb import (
    MLP,
    gradient_snr,
    linear_regression_noise_scale,
    noise_scale_simple,
    noise_scale_two_batch,
    per_sample_gradients,
)
from thermo_nb.models import flatten_params

D, NOISE_STD = 20, 1.0
TRUE_G2 = 1.0
TRUE_TRACE = D * (TRUE_G2 + NOISE_STD**2) + TRUE_G2  # 41
TRUE_B_SIMPLE = TRUE_TRACE / TRUE_G2  # 41


def _delta():
    delta = torch.zeros(D, dtype=torch.float64)
    delta[0], delta[1] = 0.6, 0.8  # |delta|^2 = 1
    return delta


def _regression_sample(gen, n, delta):
    x = torch.randn(n, D, generator=gen, dtype=torch.float64)
    eps = NOISE_STD * torch.randn(n, generator=gen, dtype=torch.float64)
    return x, eps


def _regression_problem(seed, n):
    """Parameters w = w* + delta, data x and targets y = x.w* + eps of the linear regression
    above, drawn from one seeded generator; also returns delta and eps."""
    gen = torch.Generator().manual_seed(seed)
    w_star = torch.randn(D, generator=gen, dtype=torch.float64)
    delta = _delta()
    x, eps = _regression_sample(gen, n, delta)
    return w_star + delta, x, x @ w_star + eps, delta, eps


def _squared_error(w, xi, yi):
    """Per-example loss l(w, x, y) = (w.x - y)^2 / 2."""
    return 0.5 * (w @ xi - yi) ** 2


def _chunk_standard_error(values: np.ndarray) -> float:
    """Standard error of the full-sample estimate from K equal chunks: sd(chunks)/sqrt(K)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def _assert_within_4_se_and_5_percent(est, chunks):
    """Each field of ``est`` within 4 standard errors (measured from the chunk estimates) of
    the closed form, the test sharp enough to resolve 5%, and the value within 5%."""
    for field, truth in (
        ("B_simple", TRUE_B_SIMPLE),
        ("G_norm2", TRUE_G2),
        ("trace_sigma", TRUE_TRACE),
    ):
        value = getattr(est, field)
        se = _chunk_standard_error(np.array([getattr(c, field) for c in chunks]))
        assert 4 * se < 0.05 * truth, (
            f"{field}: spread too large for a 5% test (se={se})"
        )
        assert abs(value - truth) < 4 * se, f"{field}: {value} vs {truth} (se {se})"
        assert abs(value - truth) < 0.05 * truth


def test_package_closed_form_equals_formula_in_test():
    ns = linear_regression_noise_scale(_delta(), NOISE_STD)
    assert ns.G_norm2 == pytest.approx(TRUE_G2, rel=1e-12)
    assert ns.trace_sigma == pytest.approx(TRUE_TRACE, rel=1e-12)
    assert ns.B_simple == pytest.approx(TRUE_B_SIMPLE, rel=1e-12)


@pytest.mark.parametrize("backend", ["vmap", "fused"])
@pytest.mark.parametrize(
    "activation, bias", [("tanh", True), ("relu", True), ("identity", False)]
)
def test_per_sample_gradients_equal_autograd_loop(backend, activation, bias):
    torch.manual_seed(0)
    net = MLP(6, 8, 3, depth=2, activation=activation, bias=bias).double()
    x = torch.randn(16, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (16,))
    loop = torch.stack(
        [
            torch.cat(
                [
                    g.reshape(-1)
                    for g in torch.autograd.grad(
                        torch.nn.functional.cross_entropy(
                            net(x[i : i + 1]), y[i : i + 1]
                        ),
                        list(net.parameters()),
                    )
                ]
            )
            for i in range(16)
        ]
    )
    vec = per_sample_gradients(net, None, x, y, backend=backend)
    assert vec.shape == (16, sum(p.numel() for p in net.parameters()))
    torch.testing.assert_close(vec, loop, rtol=1e-10, atol=1e-12)
    # the same from a flat parameter vector, in chunks
    vec_flat = per_sample_gradients(
        net,
        flatten_params(net).detach(),
        x,
        y,
        chunk_size=5 if backend == "vmap" else None,
        backend=backend,
    )
    torch.testing.assert_close(vec_flat, loop, rtol=1e-10, atol=1e-12)
    buf = torch.full_like(loop, float("nan"))
    assert per_sample_gradients(net, None, x, y, backend=backend, out=buf) is buf
    torch.testing.assert_close(buf, loop, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="out must be"):
        per_sample_gradients(net, None, x, y, backend=backend, out=buf[:, 1:])


def _autograd_loop_rows(net, x, y):
    """Per-example gradients by a loop of ``autograd.grad`` (the plain reference)."""
    rows = []
    for i in range(x.shape[0]):
        loss = torch.nn.functional.cross_entropy(net(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(net.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _torch_func_rows(net, x, y):
    """Per-example gradients by plain ``torch.func`` (per-layer tensors, concatenated)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss_of_one(p, xi, yi):
        out = functional_call(net, p, (xi.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, yi.unsqueeze(0))

    g = vmap(grad(loss_of_one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[k].reshape(x.shape[0], -1) for k in params], dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plain_call_equals_loop_and_torch_func_on_a_pooled_result(dtype):
    # large enough (>= 1 MiB) for the result to come from the output pool
    torch.manual_seed(1)
    net = MLP(64, 64, 10, depth=2).to(dtype)
    x, y = torch.randn(40, 64, dtype=dtype), torch.randint(0, 10, (40,))
    vec = per_sample_gradients(net, None, x, y)
    assert vec.nbytes >= 2**20 and vec.dtype == dtype and vec.is_contiguous()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else {}
    torch.testing.assert_close(vec, _autograd_loop_rows(net, x, y), **tol)
    torch.testing.assert_close(vec, _torch_func_rows(net, x, y), **tol)


@pytest.mark.parametrize("backend", ["fused", "vmap"])
def test_a_result_still_held_is_never_overwritten_by_the_next_call(backend):
    torch.manual_seed(2)
    net = MLP(64, 64, 10, depth=2)
    x, y = torch.randn(40, 64), torch.randint(0, 10, (40,))
    first = per_sample_gradients(net, None, x, y, backend=backend)
    copy = first.clone()
    row = first[7]  # a view alone must protect the memory too
    second = per_sample_gradients(net, None, -x, y, backend=backend)
    assert not torch.equal(second, copy)
    assert torch.equal(first, copy)
    del first
    third = per_sample_gradients(net, None, 2 * x, y, backend=backend)
    assert torch.equal(row, copy[7]) and not torch.equal(third[7], copy[7])
    # once nothing refers to a result, its memory serves the next call
    ptr = third.data_ptr()
    del third
    assert per_sample_gradients(net, None, x, y, backend=backend).data_ptr() == ptr


def test_fused_per_sample_gradients_refuse_other_losses():
    net = MLP(6, 8, 3, depth=1).double()
    x, y = torch.randn(4, 6, dtype=torch.float64), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match="backend='fused' needs"):
        per_sample_gradients(
            net, None, x, y, lambda o, t: o.pow(2).mean(), backend="fused"
        )
    with pytest.raises(ValueError, match="backend must be one of"):
        per_sample_gradients(net, None, x, y, backend="loop")


def test_per_sample_gradients_of_plain_loss_function_match_closed_form():
    w, x, y, delta, eps = _regression_problem(1, 64)
    g = per_sample_gradients(_squared_error, w, x, y)
    closed = (x @ delta - eps)[:, None] * x  # g_i = (delta.x_i - eps_i) x_i
    torch.testing.assert_close(g, closed, rtol=1e-10, atol=1e-12)


def test_noise_scale_simple_matches_linear_regression_closed_form():
    # N = 250k per-example gradients.  Leading variance of |G|^2_hat is 4 G^T Sigma G / N
    # = 4 * 3 / N (G^T Sigma G = |delta|^2 (|delta|^2 + s^2) + |delta|^4 = 3), i.e. a
    # relative sd of ~0.7% on |G|^2 and hence on B_simple; 4 standard errors ~2.8% < 5%.
    # The standard error is measured from K = 40 chunks rather than assumed.
    w, x, y, _, _ = _regression_problem(2, 250_000)
    g = per_sample_gradients(_squared_error, w, x, y)
    est = noise_scale_simple(g)
    chunks = [noise_scale_simple(c) for c in g.chunk(40)]
    _assert_within_4_se_and_5_percent(est, chunks)


def test_noise_scale_simple_G_norm2_is_unbiased_at_tiny_batch():
    # |g_bar|^2 alone would be biased by tr(Sigma)/B = 41/4 = 10.25 at B = 4; the corrected
    # estimate must average to |G|^2 = 1 within 4 standard errors over 5000 batches.
    gen = torch.Generator().manual_seed(3)
    delta = _delta()
    x, eps = _regression_sample(gen, 5000 * 4, delta)
    g = ((x @ delta - eps)[:, None] * x).reshape(5000, 4, D)
    vals = np.array([noise_scale_simple(b).G_norm2 for b in g])
    se = vals.std(ddof=1) / np.sqrt(len(vals))
    assert abs(vals.mean() - TRUE_G2) < 4 * se
    assert 4 * se < 2.0  # the test can tell 1 from 11.25
    traces = np.array([noise_scale_simple(b).trace_sigma for b in g])
    assert abs(traces.mean() - TRUE_TRACE) < 4 * traces.std(ddof=1) / np.sqrt(
        len(traces)
    )


def test_noise_scale_two_batch_matches_linear_regression_closed_form():
    # B_small = 8 nested in B_big = 128 (as with data parallelism: the local batch is part
    # of the global one; each expectation E|G_B|^2 = |G|^2 + tr(Sigma)/B still holds).
    # Per-example gradients are products of Gaussians (heavy-tailed), so the per-pair
    # tr(Sigma) estimate has sd ~35 (measured); with 24000 pairs the relative SEs are
    # ~0.6% (tr Sigma), ~0.3% (|G|^2) and ~0.8% (B_simple): 4 SE ~ 3% < 5%.  The SE is
    # measured from 40 chunks, not assumed.  float32 keeps the 61M normals cheap.
    gen = torch.Generator().manual_seed(4)
    delta = _delta().float()
    b_small, b_big, n_pairs, k = 8, 128, 24000, 40
    small_sq, big_sq = [], []
    for _ in range(k):  # chunks bound the memory
        x = torch.randn(n_pairs // k, b_big, D, generator=gen)
        eps = NOISE_STD * torch.randn(n_pairs // k, b_big, generator=gen)
        g = ((x @ delta) - eps)[..., None] * x  # per-example gradients
        small_sq.append((g[:, :b_small].mean(dim=1) ** 2).sum(dim=1))
        big_sq.append((g.mean(dim=1) ** 2).sum(dim=1))
    est = noise_scale_two_batch(torch.cat(small_sq), torch.cat(big_sq), b_small, b_big)
    chunks = [
        noise_scale_two_batch(s, b, b_small, b_big) for s, b in zip(small_sq, big_sq)
    ]
    _assert_within_4_se_and_5_percent(est, chunks)


def test_two_batch_exact_expectations_give_exact_answer():
    # E|G_B|^2 = |G|^2 + tr(Sigma)/B exactly -> the estimator inverts it exactly.
    e_small = TRUE_G2 + TRUE_TRACE / 8
    e_big = TRUE_G2 + TRUE_TRACE / 512
    ns = noise_scale_two_batch([e_small, e_small], np.array([e_big]), 8, 512)
    assert ns.G_norm2 == pytest.approx(TRUE_G2, rel=1e-12)
    assert ns.trace_sigma == pytest.approx(TRUE_TRACE, rel=1e-12)
    assert ns.B_simple == pytest.approx(TRUE_B_SIMPLE, rel=1e-12)


def test_gradient_snr_equals_sqrt_batch_over_noise_scale():
    # For batches of B drawn i.i.d., E|g_i - G|^2 = tr(Sigma)/B, so
    # SNR_rms = |G| / sqrt(tr(Sigma)/B) = sqrt(B / B_simple) = sqrt(128/41) = 1.767.
    # K = 1000 minibatches (as in Sadrtdinov et al.); the SE of the SNR is taken from the
    # spread of |g_i - G|^2 by the delta method: se(SNR)/SNR = se(mean)/(2 mean).
    gen = torch.Generator().manual_seed(5)
    delta = _delta()
    batch, k = 128, 1000
    x = torch.randn(k, batch, D, generator=gen, dtype=torch.float64)
    eps = NOISE_STD * torch.randn(k, batch, generator=gen, dtype=torch.float64)
    g_i = (((x @ delta) - eps)[..., None] * x).mean(dim=1)
    snr = gradient_snr(delta, g_i)  # full gradient G = delta exactly
    truth = math.sqrt(batch / TRUE_B_SIMPLE)
    dev2 = ((g_i - delta) ** 2).sum(dim=1).numpy()
    se = truth * dev2.std(ddof=1) / np.sqrt(k) / (2 * dev2.mean())
    assert abs(snr - truth) < 4 * se
    assert 4 * se < 0.05 * truth


def test_gradient_snr_definitions_on_hand_example():
    g = torch.tensor([3.0, 4.0])  # |g| = 5
    gi = torch.stack([g + torch.tensor([1.0, 0.0]), g + torch.tensor([0.0, 3.0])])
    assert gradient_snr(g, gi) == pytest.approx(5 / math.sqrt((1 + 9) / 2))
    assert gradient_snr(g, gi, definition="mean") == pytest.approx(5 / 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: noise_scale_simple(torch.ones(1, 3)), "at least 2"),
        (
            lambda: noise_scale_simple(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])),
            "NaN",
        ),
        (lambda: noise_scale_simple(torch.ones(5)), "dimension"),
        (lambda: noise_scale_two_batch(1.0, 1.0, 8, 8), "b_small < b_big"),
        (lambda: noise_scale_two_batch(1.0, 1.0, 0, 8), "b_small"),
        (lambda: noise_scale_two_batch(-1.0, 1.0, 2, 8), ">= 0"),
        (
            lambda: gradient_snr(torch.ones(3), torch.ones(2, 3), definition="x"),
            "definition",
        ),
        (lambda: gradient_snr(torch.ones(3), torch.ones(2, 4)), "shape"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
