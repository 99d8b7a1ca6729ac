"""Scale-invariant networks and projected SGD on the sphere (thermo_nb.models.scale_invariant,
thermo_nb.training.sphere)."""

import math

import numpy as np
import pytest
import torch

from thermo_nb.estimators.gradient_noise import gradient_snr
from thermo_nb.models import flatten_params
from thermo_nb.models.scale_invariant import (
    ConvNetSI,
    ScaleInvariantMLP,
    joint_norm,
    n_scale_invariant,
    scale_invariant_parameters,
)
from thermo_nb.training.sphere import SphereSGD, sphere_sgd_reference


def _data(n=48, d=6, k=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randint(
        0, k, (n,), generator=g
    )


def _mlp64(eps=0.0, depth=2):
    return lambda: ScaleInvariantMLP(6, 7, 3, depth=depth, eps=eps).double()


def test_si_parameter_counts_match_the_papers():
    # ConvNet-SI: 27 c + 378 c^2 scale-invariant weights (24 408 for c = 8)
    for c in (1, 2, 8):
        assert n_scale_invariant(ConvNetSI(c)) == 27 * c + 378 * c * c
    net = ScaleInvariantMLP(64, 16, 10, depth=3)
    assert n_scale_invariant(net) == 64 * 16 + 2 * 16 * 16
    # the frozen head is a buffer with Frobenius norm 10, not a parameter
    assert "head.weight" not in scale_invariant_parameters(net)
    assert math.isclose(float(net.head.weight.norm()), 10.0, rel_tol=1e-6)
    # the head depends on head_seed only, not on the global RNG
    torch.manual_seed(123)
    other = ScaleInvariantMLP(64, 16, 10, depth=3)
    assert torch.equal(net.head.weight, other.head.weight)


@pytest.mark.parametrize(
    "make, shape",
    [(_mlp64(), (16, 6)), (lambda: ConvNetSI(2, eps=0.0).double(), (6, 3, 32, 32))],
)
def test_loss_is_scale_invariant_and_gradient_orthogonal(make, shape):
    torch.manual_seed(0)
    net = make()
    x = torch.randn(*shape, dtype=torch.float64)
    y = torch.randint(0, 3, (shape[0],))
    loss = torch.nn.functional.cross_entropy(net(x), y)
    params = list(scale_invariant_parameters(net).values())
    grads = torch.autograd.grad(loss, params)
    w = torch.cat([p.detach().reshape(-1) for p in params])
    g = torch.cat([q.reshape(-1) for q in grads])
    # grad L . w = 0 exactly for eps = 0 (Euler's theorem, degree-0 homogeneity)
    assert abs(float(g @ w)) <= 1e-10 * float(g.norm() * w.norm())
    for c in (0.01, 3.0, 250.0):
        with torch.no_grad():
            for p in params:
                p.mul_(c)
        scaled = torch.nn.functional.cross_entropy(net(x), y)
        with torch.no_grad():
            for p in params:
                p.div_(c)
        assert abs(float((scaled - loss).detach())) <= 1e-10 * max(
            1.0, float(loss.detach())
        )


def test_default_eps_breaks_invariance_only_at_order_eps_over_variance():
    torch.manual_seed(1)
    net = ScaleInvariantMLP(6, 7, 3, depth=2).double()  # eps = 1e-5
    x = torch.randn(32, 6, dtype=torch.float64)
    with torch.no_grad():
        h = net.layers[0](x)  # first pre-activations: their variance sets eps / var
        var_min = float(h.var(dim=0, unbiased=False).min())
        out = net(x)
        for p in net.parameters():
            p.mul_(10.0)  # pre-activation variances x100: eps/var falls by 100
        change = float((net(x) - out).abs().max())
    # 1/sqrt(var + eps) = var^-1/2 (1 - eps / (2 var) + ...): relative change <= eps/var
    assert change <= float(out.abs().max()) * 1e-5 / var_min


def test_projection_keeps_the_joint_norm():
    x, y = _data(dtype=torch.float64)
    tr = SphereSGD(
        _mlp64(eps=1e-5), 4, x, y, lr=[1e-3, 1e-2, 0.1, 1.0], batch_size=8, radius=2.0
    )
    r0 = joint_norm(tr.params, batch_dims=1)
    assert torch.allclose(r0, torch.full_like(r0, 2.0), rtol=0, atol=1e-13)
    for _ in range(30):
        tr.step()
        r = joint_norm(tr.params, batch_dims=1)
        assert float((r - 2.0).abs().max()) <= 1e-13
    # before projection the norm grew: |w - lr g|^2 = r0^2 + lr^2 |g|^2 (g orthogonal)
    assert bool((tr.last_radius > 2.0).all())
    # float32: the same within float rounding
    x32, y32 = _data()
    tr32 = SphereSGD(
        lambda: ScaleInvariantMLP(6, 7, 3, depth=2), 3, x32, y32, lr=0.5, batch_size=8
    )
    for _ in range(30):
        tr32.step()
    assert float((tr32.si_norm() - 1.0).abs().max()) <= 1e-6


def test_every_learning_rate_starts_from_the_same_point():
    x, y = _data()
    tr = SphereSGD(
        lambda: ScaleInvariantMLP(6, 7, 3),
        5,
        x,
        y,
        lr=[1e-3, 1e-2, 1e-1, 1, 10],
        batch_size=8,
    )
    w = tr.flat_si_params()
    assert torch.equal(w, w[:1].expand_as(w))


@pytest.mark.parametrize(
    "protocol, kwargs",
    [
        ("fixed_sphere", {}),
        ("fixed_sphere", {"momentum": [0.0, 0.9, 0.5], "weight_decay": 1e-3}),
        ("fixed_lr", {"weight_decay": [1e-2, 1e-1, 1.0]}),
        (
            "fixed_elr",
            {
                "lr": [1e-3, 3e-3, 1e-2],
                "weight_decay": 0.1,
                "momentum": 0.5,
                "radius": [0.5, 1, 2],
            },
        ),
    ],
)
def test_ensemble_matches_plain_loop(protocol, kwargs):
    # float64 and 10 steps: SGD on this tiny net amplifies rounding differences (vmap vs
    # autograd, ~1e-16 at step 1) by a factor of ~2-3 per step (chaotic dynamics), so
    # long or float32 runs part by more than rounding without any error in the update
    x, y = _data(dtype=torch.float64)
    make = lambda: ScaleInvariantMLP(6, 7, 3, depth=2).double()  # noqa: E731
    common = dict(lr=[0.01, 0.03, 0.1], batch_size=8, seed=3, protocol=protocol)
    common.update(kwargs)
    tr = SphereSGD(make, 3, x, y, **common)
    losses = torch.stack([tr.step() for _ in range(10)])
    ref = sphere_sgd_reference(make, 3, x, y, n_steps=10, **common)
    assert not bool(tr.diverged.any()) and bool(torch.isfinite(losses).all())
    assert torch.allclose(losses, ref["losses"], rtol=0, atol=1e-9)
    assert torch.allclose(tr.flat_params(), ref["flat_params"], rtol=0, atol=1e-10)
    assert torch.allclose(tr.last_radius, ref["radius_before"][-1], rtol=1e-10, atol=0)


def test_divergence_is_flagged_not_raised():
    x, y = _data()
    tr = SphereSGD(
        lambda: ScaleInvariantMLP(6, 7, 3),
        2,
        x,
        y,
        lr=[0.1, 1e36],
        weight_decay=1.0,
        protocol="fixed_lr",
        batch_size=8,
    )
    for _ in range(6):
        tr.step()
    assert tr.diverged.tolist() == [False, True]
    assert bool(torch.isfinite(tr.flat_params()[0]).all())


def test_resume_from_state_dict_is_bit_identical():
    x, y = _data()
    make = lambda: ScaleInvariantMLP(6, 7, 3)  # noqa: E731
    kw = dict(lr=[0.05, 0.5], batch_size=8, momentum=0.9, weight_decay=1e-3)
    a = SphereSGD(make, 2, x, y, **kw)
    for _ in range(10):
        a.step()
    state = a.state_dict()
    for _ in range(10):
        a.step()
    b = SphereSGD(make, 2, x, y, **kw)
    b.load_state_dict(state)
    for _ in range(10):
        b.step()
    assert torch.equal(a.flat_params(), b.flat_params())


def test_gradient_statistics_match_explicit_minibatch_gradients():
    x, y = _data(n=40, dtype=torch.float64)
    tr = SphereSGD(_mlp64(eps=1e-5), 2, x, y, lr=[0.01, 0.1], batch_size=8)
    for _ in range(5):
        tr.step()
    stats = tr.gradient_statistics(20, generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    idx = [torch.randint(40, (2, 8), generator=gen) for _ in range(20)]
    for m in range(2):
        net = _mlp64(eps=1e-5)()
        with torch.no_grad():
            for n, p in net.named_parameters():
                p.copy_(tr.params[n][m])
        params = list(net.parameters())

        def grad_on(ix, net=net, params=params):
            loss = torch.nn.functional.cross_entropy(net(x[ix]), y[ix])
            return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

        full = grad_on(torch.arange(40))
        mini = torch.stack([grad_on(i[m]) for i in idx])
        assert math.isclose(
            stats["full_grad_norm"][m], float(full.norm()), rel_tol=1e-9
        )
        assert math.isclose(stats["snr"][m], gradient_snr(full, mini), rel_tol=1e-8)
        assert math.isclose(
            stats["stoch_grad_mean_norm"][m],
            float(mini.norm(dim=1).mean()),
            rel_tol=1e-9,
        )


def test_flat_si_params_are_the_trained_weights():
    x, y = _data()
    tr = SphereSGD(lambda: ScaleInvariantMLP(6, 7, 3), 2, x, y, lr=0.1, batch_size=8)
    assert torch.equal(tr.flat_si_params(), flatten_params(tr.params, batch_dims=1))


def test_record_sphere_run_logs_and_resumes_from_its_cache(tmp_path):
    from thermo_nb.runtime import ResultCache
    from thermo_nb.training.sphere import record_sphere_run

    x, y = _data(n=64)
    make = lambda: ScaleInvariantMLP(6, 7, 3)  # noqa: E731

    def run(n_steps, cache=None):
        tr = SphereSGD(make, 2, x, y, lr=[0.05, 0.5], batch_size=8)
        out = record_sphere_run(
            tr, n_steps, [5, 30, 60], window=20, entropy_k=5, snr_batches=4,
            cache=cache, params={"test": 1},
        )  # fmt: skip
        return tr, out

    tr, out = run(60)
    assert out["loss"].shape == (3, 2) and out["dim"] == 6 * 7
    # entropy only where a full window of 20 iterates preceded the log point
    assert np.isnan(out["entropy"][0]).all() and np.isfinite(out["entropy"][1:]).all()
    assert np.isfinite(out["snr"]).all() and tr.step_count == 60
    cache = ResultCache(tmp_path)
    tr1, first = run(60, cache)
    tr2, again = run(60, cache)  # finished run: read back, trainer restored
    for k in ("loss", "entropy", "snr"):
        assert np.array_equal(first[k], again[k], equal_nan=True)
        assert np.allclose(first[k], out[k], equal_nan=True)
    assert torch.equal(tr1.flat_params(), tr2.flat_params())
