"""Vectorised ensemble training, models and data loaders."""

import gzip
import struct

import numpy as np
import pytest
import torch

from thermo_nb import (
    MLP,
    EnsembleTrainer,
    LoopEnsemble,
    load_digits_tensors,
    load_mnist,
    train_loop_reference,
)
from thermo_nb.models import flatten_params, param_spec, unflatten_params
from thermo_nb.runtime import ResultCache


@pytest.fixture(scope="module")
def digits64():
    d = load_digits_tensors(device="cpu", dtype=torch.float64)
    return d.x_train[:400], d.y_train[:400]


def _mlp64():
    return MLP(64, 24, 10, depth=2).double()


# ----------------------------------------------------------------------------- ensemble


@pytest.mark.parametrize("backend", ["vmap", "fused"])
@pytest.mark.parametrize("sampling", ["replacement", "shuffle"])
def test_vectorised_ensemble_matches_python_loop_over_same_replicas(
    digits64, sampling, backend
):
    x, y = digits64
    kw = dict(
        lr=[0.05, 0.1, 0.2, 0.1],
        weight_decay=[0.0, 1e-3, 0.0, 1e-2],
        batch_size=10,
        seed=3,
        sampling=sampling,
    )
    trainer = EnsembleTrainer(_mlp64, 4, x, y, backend=backend, **kw)
    assert trainer.backend == backend
    losses = torch.stack([trainer.step() for _ in range(60)])  # > 1 epoch with shuffle
    ref = train_loop_reference(_mlp64, 4, x, y, n_steps=60, **kw)
    torch.testing.assert_close(losses, ref["losses"], rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(
        trainer.flat_params(), ref["flat_params"], rtol=1e-9, atol=1e-11
    )
    assert not trainer.diverged.any() and not ref["diverged"].any()
    # training did something and the replicas differ (own seeds and batches)
    assert losses[-10:].mean() < losses[:10].mean()
    assert (trainer.flat_params()[0] - trainer.flat_params()[1]).abs().max() > 1e-3


def test_foreach_sgd_loop_follows_the_autograd_loop_and_the_trainer(digits64):
    # the benchmark's best plain loop (one SGD(foreach=True) over all replicas) trains the
    # same replicas on the same minibatches: equal to the per-replica autograd loop and
    # to the trainer; per-replica lr and weight decay go through SGD's parameter groups
    x, y = digits64
    kw = dict(
        lr=[0.05, 0.1, 0.05], weight_decay=[0.0, 1e-3, 0.0], batch_size=10, seed=2
    )
    ref = train_loop_reference(_mlp64, 3, x, y, n_steps=30, **kw)
    loop = LoopEnsemble(_mlp64, 3, x, y, update="foreach_sgd", **kw)
    assert len(loop.optimizer.param_groups) == 2  # (0.05, 0) shared by replicas 0 and 2
    losses = torch.stack([loop.step() for _ in range(30)])
    torch.testing.assert_close(losses, ref["losses"], rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(
        loop.flat_params(), ref["flat_params"], rtol=1e-9, atol=1e-11
    )
    trainer = EnsembleTrainer(_mlp64, 3, x, y, **kw)
    for _ in range(30):
        trainer.step()
    torch.testing.assert_close(
        loop.flat_params(), trainer.flat_params(), rtol=1e-9, atol=1e-11
    )


def test_foreach_sgd_loop_freezes_a_diverged_replica(digits64):
    x, y = digits64
    make = lambda: MLP(64, 16, 10, depth=2)  # noqa: E731
    kw = dict(lr=[0.05, 1e6, 0.05], batch_size=10, seed=8)
    ref = train_loop_reference(make, 3, x.float(), y, n_steps=30, **kw)
    loop = LoopEnsemble(make, 3, x.float(), y, update="foreach_sgd", **kw)
    for _ in range(30):
        loop.step()
    assert loop.diverged == ref["diverged"].tolist() == [False, True, False]
    torch.testing.assert_close(loop.flat_params(), ref["flat_params"], equal_nan=True)
    with pytest.raises(ValueError, match="update must be one of"):
        LoopEnsemble(make, 3, x, y, update="adam", **kw)


def test_full_loss_and_full_gradient_equal_per_replica_autograd(digits64):
    x, y = digits64
    trainer = EnsembleTrainer(_mlp64, 3, x, y, lr=0.1, batch_size=8, seed=1)
    for _ in range(5):
        trainer.step()
    spec = trainer.spec
    full = trainer.full_loss(batch_size=150)
    grads = trainer.per_replica_grad(batch_size=150)
    for m, flat in enumerate(trainer.flat_params()):
        net = _mlp64()
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(unflatten_params(flat, spec)[name])
        loss = torch.nn.functional.cross_entropy(net(x), y)
        g = torch.cat(
            [t.reshape(-1) for t in torch.autograd.grad(loss, list(net.parameters()))]
        )
        torch.testing.assert_close(full[m], loss.detach(), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grads[m], g, rtol=1e-9, atol=1e-12)


def _mse(out, target):
    return ((out - target) ** 2).mean()


def test_divergence_at_huge_lr_is_flagged_not_raised(digits64):
    # Least squares on one-hot targets: gradient descent diverges geometrically once
    # lr > 2 / lambda_max of the (minibatch) Hessian; at lr = 1e3 the float32 weights
    # overflow to inf within a few dozen steps and the loss becomes inf/NaN.
    x, y = digits64
    x32, target = x.float(), torch.nn.functional.one_hot(y, 10).float()
    lin = lambda: MLP(64, 1, 10, depth=0)  # noqa: E731  (a linear model)
    kw = dict(lr=[0.01, 1e3, 0.01], batch_size=10, seed=7, loss_fn=_mse)
    trainer = EnsembleTrainer(lin, 3, x32, target, **kw)
    for _ in range(60):
        losses = trainer.step()
    assert trainer.diverged.tolist() == [False, True, False]
    assert torch.isfinite(losses[[0, 2]]).all() and not torch.isfinite(losses[1])
    # the healthy replicas are unaffected: they match the reference loop
    ref = train_loop_reference(lin, 3, x32, target, n_steps=60, **kw)
    assert ref["diverged"].tolist() == [False, True, False]
    torch.testing.assert_close(
        trainer.flat_params()[[0, 2]], ref["flat_params"][[0, 2]], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("activation, bias", [("tanh", True), ("identity", False)])
def test_fused_backend_matches_loop_for_other_activations_and_no_bias(
    digits64, activation, bias
):
    x, y = digits64
    make = lambda: MLP(64, 12, 10, depth=2, activation=activation, bias=bias).double()  # noqa
    kw = dict(lr=[0.05, 0.2, 0.1], weight_decay=[0.0, 1e-2, 0.0], batch_size=7, seed=4)
    trainer = EnsembleTrainer(make, 3, x, y, **kw)
    assert trainer.backend == "fused"
    for _ in range(40):
        trainer.step()
    ref = train_loop_reference(make, 3, x, y, n_steps=40, **kw)
    torch.testing.assert_close(
        trainer.flat_params(), ref["flat_params"], rtol=1e-9, atol=1e-11
    )


def test_fused_backend_freezes_a_diverged_replica_like_the_vmap_backend(digits64):
    # cross-entropy, relu MLP, float32: at lr = 1e6 the weights of replica 1 blow up to
    # inf within a few steps and its loss turns NaN; the other two must be unaffected
    x, y = digits64
    x32 = x.float()
    make = lambda: MLP(64, 16, 10, depth=2)  # noqa: E731
    kw = dict(lr=[0.05, 1e6, 0.05], batch_size=10, seed=8)
    runs = {
        b: EnsembleTrainer(make, 3, x32, y, backend=b, **kw) for b in ("vmap", "fused")
    }
    for trainer in runs.values():
        for _ in range(40):
            losses = trainer.step()
        assert trainer.diverged.tolist() == [False, True, False]
        assert torch.isfinite(losses[[0, 2]]).all() and not torch.isfinite(losses[1])
        frozen = trainer.flat_params()[1]
        trainer.step()  # a frozen replica stays put
        torch.testing.assert_close(
            trainer.flat_params()[1], frozen, equal_nan=True, rtol=0, atol=0
        )
    torch.testing.assert_close(
        runs["fused"].flat_params()[[0, 2]],
        runs["vmap"].flat_params()[[0, 2]],
        rtol=1e-4,
        atol=1e-5,
    )


def test_fused_backend_refuses_architectures_it_cannot_compute(digits64):
    x, y = digits64
    with pytest.raises(
        ValueError, match="backend=.fused. needs a thermo_nb.models.MLP"
    ):
        EnsembleTrainer(
            _mlp64,
            2,
            x,
            y,
            lr=0.1,
            batch_size=5,
            backend="fused",
            loss_fn=torch.nn.functional.cross_entropy,
        )
    seq = lambda: torch.nn.Sequential(torch.nn.Linear(64, 10)).double()  # noqa: E731
    assert EnsembleTrainer(seq, 2, x, y, lr=0.1, batch_size=5).backend == "vmap"


def test_state_dict_round_trip_continues_bit_identically(digits64):
    x, y = digits64
    a = EnsembleTrainer(_mlp64, 2, x, y, lr=0.1, batch_size=10, seed=5)
    for _ in range(7):  # stop in the middle of a sampler block
        a.step()
    saved = a.state_dict()
    for _ in range(9):
        a.step()
    b = EnsembleTrainer(_mlp64, 2, x, y, lr=0.1, batch_size=10, seed=5)
    b.load_state_dict(saved)
    for _ in range(9):
        b.step()
    assert torch.equal(a.flat_params(), b.flat_params())
    assert a.step_count == b.step_count == 16


def test_train_resumes_after_interruption_with_identical_result(digits64, tmp_path):
    x, y = digits64
    key = {"test": "resume"}
    make = lambda: EnsembleTrainer(_mlp64, 2, x, y, lr=0.1, batch_size=10, seed=9)  # noqa
    straight = make()
    losses_straight = straight.train(25)

    interrupted = make()
    original_step = interrupted.step

    def failing_step():
        if interrupted.step_count == 17:
            raise RuntimeError("simulated kill")
        return original_step()

    interrupted.step = failing_step
    with pytest.raises(RuntimeError, match="simulated kill"):
        interrupted.train(
            25, cache=ResultCache(tmp_path), params=key, checkpoint_every=5
        )

    def counting(trainer):
        calls, inner = [], trainer.step
        trainer.step = lambda: (calls.append(1), inner())[1]
        return calls

    fresh = make()
    calls = counting(fresh)
    losses_resumed = fresh.train(
        25, cache=ResultCache(tmp_path), params=key, checkpoint_every=5
    )
    assert len(calls) == 25 - 15  # resumed from the checkpoint at step 15
    assert fresh.step_count == 25
    assert torch.equal(fresh.flat_params(), straight.flat_params())
    assert torch.equal(losses_resumed, losses_straight)
    # a finished run is returned from the cache and loaded into a new trainer
    again = make()
    calls = counting(again)
    again.train(25, cache=ResultCache(tmp_path), params=key, checkpoint_every=5)
    assert len(calls) == 0
    assert torch.equal(again.flat_params(), straight.flat_params())


def test_replica_trajectory_depends_only_on_its_own_seed(digits64):
    # growing the ensemble must not change existing replicas (own init and data streams)
    x, y = digits64
    small = EnsembleTrainer(_mlp64, 2, x, y, lr=0.1, batch_size=10, seeds=[11, 12])
    big = EnsembleTrainer(_mlp64, 3, x, y, lr=0.1, batch_size=10, seeds=[11, 12, 13])
    for _ in range(8):
        small.step(), big.step()
    torch.testing.assert_close(
        big.flat_params()[:2], small.flat_params(), rtol=1e-12, atol=1e-14
    )


def test_shared_init_starts_replicas_at_one_point_then_noise_separates_them(digits64):
    x, y = digits64
    trainer = EnsembleTrainer(
        _mlp64, 3, x, y, lr=0.1, batch_size=5, seed=2, init="shared"
    )
    w0 = trainer.flat_params()
    assert torch.equal(w0[0], w0[1]) and torch.equal(w0[0], w0[2])
    for _ in range(5):
        trainer.step()
    w = trainer.flat_params()
    assert (w[0] - w[1]).abs().max() > 0
    per = EnsembleTrainer(_mlp64, 3, x, y, lr=0.1, batch_size=5, seed=2).flat_params()
    assert not torch.equal(per[0], per[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=-1.0, batch_size=5), "lr"),
        (dict(lr=[0.1, 0.2], batch_size=5), "lr"),
        (dict(lr=0.1, batch_size=0), "batch_size"),
        (dict(lr=0.1, batch_size=5, sampling="bootstrap"), "sampling"),
        (dict(lr=0.1, batch_size=5, init="zeros"), "init"),
        (dict(lr=0.1, batch_size=5000, sampling="shuffle"), "batch_size"),
        (dict(lr=0.1, batch_size=5, backend="jax"), "backend"),
    ],
)
def test_bad_trainer_arguments_raise_value_error(digits64, kwargs, match):
    x, y = digits64
    with pytest.raises(ValueError, match=match):
        EnsembleTrainer(_mlp64, 3, x, y, **kwargs)


# ----------------------------------------------------------------------------- models


def test_mlp_depth_counts_hidden_layers_and_flat_layout_round_trips():
    for depth in (0, 1, 3):
        net = MLP(5, 7, 2, depth=depth)
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert len(linears) == depth + 1
    net = MLP(5, 7, 2, depth=2)
    flat = flatten_params(net)
    assert flat.shape == (5 * 7 + 7 + 7 * 7 + 7 + 7 * 2 + 2,)
    back = unflatten_params(flat, param_spec(net))
    for name, p in net.named_parameters():
        assert torch.equal(back[name], p)
    with pytest.raises(ValueError, match="depth"):
        MLP(5, 7, 2, depth=-1)


# ----------------------------------------------------------------------------- data


def test_digits_have_expected_shapes_classes_and_standardisation():
    d = load_digits_tensors(device="cpu")
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    assert d.y_train.dtype == torch.int64 and d.n_classes == 10
    assert set(d.y_train.tolist()) == set(range(10)) == set(d.y_test.tolist())
    assert d.x_train.mean(0).abs().max() < 1e-5
    std = d.x_train.std(0, unbiased=False)
    assert ((std - 1).abs() < 1e-4).sum() >= 60  # constant pixels keep std 0
    assert torch.equal(load_digits_tensors(device="cpu").x_train, d.x_train)


def test_load_mnist_missing_folder_raises_clear_error(tmp_path):
    missing = tmp_path / "no_mnist_here"
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(missing)
    msg = str(err.value)
    assert (
        str(missing) in msg and "mnist.npz" in msg and "train-images-idx3-ubyte" in msg
    )
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)  # exists but empty


def _write_idx(path, array, compress):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def test_load_mnist_reads_raw_idx_files_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28)),
        "y_train": rng.integers(0, 10, 6),
        "x_test": rng.integers(0, 256, (4, 28, 28)),
        "y_test": rng.integers(0, 10, 4),
    }
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for i, (k, name) in enumerate(names.items()):
        _write_idx(
            raw / (name + (".gz" if i % 2 else "")), arrays[k], compress=bool(i % 2)
        )
    d = load_mnist(tmp_path, device="cpu", standardise=False)
    assert d.x_train.shape == (6, 784) and d.x_test.shape == (4, 784)
    np.testing.assert_allclose(
        d.x_train.numpy(), arrays["x_train"].reshape(6, -1) / 255.0, rtol=1e-6
    )
    assert d.y_test.tolist() == arrays["y_test"].tolist()
    npz_dir = tmp_path / "npz"
    npz_dir.mkdir()
    np.savez(
        npz_dir / "mnist.npz", **{k: v.astype(np.uint8) for k, v in arrays.items()}
    )
    d2 = load_mnist(npz_dir, device="cpu", standardise=False, flatten=False)
    assert d2.x_train.shape == (6, 28, 28)
    torch.testing.assert_close(d2.x_train.reshape(6, -1), d.x_train)
