"""Vectorised ensembles: M replicas of one architecture trained by plain SGD in a single
batched computation (``torch.func.stack_module_state`` + ``vmap(functional_call)``), each
replica with its own initial point and its own minibatch stream.

Thermodynamic chapters need *ensembles* of training runs (distributions of weights,
entropy production along many trajectories); running them one model at a time in Python
wastes most of the time in per-call overhead.  :class:`EnsembleTrainer` does one
vectorised SGD step for all replicas; :func:`train_loop_reference` (:class:`LoopEnsemble`)
is the plain Python loop over the same replicas, same seeds and same batches, used to check
and benchmark it, with ``autograd.grad`` per replica or one ``SGD(foreach=True)``.  For
MLPs with the cross-entropy loss the step runs by default through the fused backend of
:mod:`thermo_nb.training.ensemble_fused` (same trajectories, about 2x less memory traffic).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, stack_module_state, vmap

from ..models import flatten_params, param_spec, unflatten_params
from ..runtime import progress, resolve_device, run_resumable
from .ensemble_fused import FUSED_REQUIREMENTS, fused_mlp_layers, fused_mlp_sgd_step

SAMPLING_CHOICES = ("replacement", "shuffle")
BACKEND_CHOICES = ("auto", "vmap", "fused")
INIT_CHOICES = ("per_replica", "shared")


# ----------------------------------------------------------------------------- seeds


def _derived_seed(seed: int, stream: int) -> int:
    """Independent 63-bit seed for ``stream`` (0 = initialisation, 1 = data) of a replica."""
    return int(
        np.random.SeedSequence([int(seed), stream]).generate_state(1, np.uint64)[0] >> 1
    )


def _replica_seeds(n_replicas: int, seed: int, seeds: "Sequence[int] | None") -> list:
    if (
        isinstance(n_replicas, bool)
        or not isinstance(n_replicas, int)
        or n_replicas < 1
    ):
        raise ValueError(f"n_replicas must be a positive int, got {n_replicas!r}")
    if seeds is None:
        if (
            isinstance(seed, bool)
            or not isinstance(seed, (int, np.integer))
            or seed < 0
        ):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        return [int(seed) * 100_003 + m for m in range(n_replicas)]
    seeds = [int(s) for s in seeds]
    if len(seeds) != n_replicas or any(s < 0 for s in seeds):
        raise ValueError(
            f"seeds must be {n_replicas} non-negative ints (one per replica), "
            f"got {seeds!r}"
        )
    return seeds


def _per_replica(value, name: str, n: int, device, dtype) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n or not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(
            f"{name} must be a float >= 0 or a sequence of {n} such floats "
            f"(one per replica), got {value!r}"
        )
    return t.to(device=device, dtype=dtype).clone()


def _build_replicas(
    model_fn: Callable[[], nn.Module], seeds: list, init: str, device
) -> list:
    """Instantiate one module per replica, ``model_fn()`` under its initialisation seed."""
    if init not in INIT_CHOICES:
        raise ValueError(f"init must be one of {list(INIT_CHOICES)}, got {init!r}")
    if not callable(model_fn):
        raise ValueError(
            "model_fn must be a callable returning an nn.Module (a factory)"
        )
    models = []
    for m, s in enumerate(seeds):
        if init == "shared" and m > 0:
            models.append(copy.deepcopy(models[0]))
            continue
        with torch.random.fork_rng(
            devices=[]
        ):  # leave the caller's global RNG untouched
            torch.manual_seed(_derived_seed(s, 0))
            net = model_fn()
        if not isinstance(net, nn.Module):
            raise ValueError(
                f"model_fn must return an nn.Module, got {type(net).__name__}"
            )
        models.append(net.to(device))
    return models


# ----------------------------------------------------------------------------- batches


class ReplicaBatchSampler:
    """Independent minibatch index streams, one per replica, reproducible from seeds.

    Parameters
    ----------
    n_data : int
        Training-set size N.
    batch_size : int, 1 <= batch_size <= N (``shuffle``) or >= 1 (``replacement``)
    data_seeds : list of int
        One seed per replica (a CPU ``torch.Generator`` each).
    sampling : {"replacement", "shuffle"}
        ``"replacement"``: every batch is ``B`` indices drawn i.i.d. uniformly from
        ``{0..N-1}`` (the i.i.d. SGD of the noise-scale and free-energy papers).
        ``"shuffle"``: each replica draws its own permutation every epoch and walks it in
        consecutive batches of ``B``; the last ``N mod B`` examples of each permutation are
        dropped, so every batch has exactly ``B`` examples.
    device : torch.device
        Where the ``(M, B)`` index tensors are delivered.

    Notes
    -----
    Indices are drawn on the CPU in blocks (256 steps for ``replacement``, one epoch for
    ``shuffle``) and moved to ``device`` once per block, so streams are identical on every
    device and the per-step cost is a slice.
    """

    BLOCK = 256

    def __init__(
        self, n_data: int, batch_size: int, data_seeds: list, sampling: str, device
    ):
        if sampling not in SAMPLING_CHOICES:
            raise ValueError(
                f"sampling must be one of {list(SAMPLING_CHOICES)}, got {sampling!r}"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if sampling == "shuffle" and batch_size > n_data:
            raise ValueError(
                f"batch_size={batch_size} exceeds the {n_data} training examples "
                "(sampling='shuffle' needs batch_size <= N)"
            )
        self.n_data, self.batch_size, self.sampling, self.device = (
            n_data,
            batch_size,
            sampling,
            device,
        )
        self.generators = [
            torch.Generator().manual_seed(_derived_seed(s, 1)) for s in data_seeds
        ]
        self.buffer: "torch.Tensor | None" = None
        self.pos = 0

    def _refill(self) -> None:
        n, b = self.n_data, self.batch_size
        if self.sampling == "replacement":
            blocks = [
                torch.randint(n, (self.BLOCK, b), generator=g) for g in self.generators
            ]
        else:
            nb = n // b
            blocks = [
                torch.randperm(n, generator=g)[: nb * b].reshape(nb, b)
                for g in self.generators
            ]
        self.buffer = torch.stack(blocks).to(self.device)  # (M, steps, B)
        self.pos = 0

    def next(self) -> torch.Tensor:
        """Indices of the next minibatch of every replica, shape ``(M, B)``."""
        if self.buffer is None or self.pos >= self.buffer.shape[1]:
            self._refill()
        idx = self.buffer[:, self.pos]
        self.pos += 1
        return idx

    def state_dict(self) -> dict:
        return {
            "generators": [g.get_state() for g in self.generators],
            "buffer": None if self.buffer is None else self.buffer.cpu(),
            "pos": self.pos,
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["generators"]) != len(self.generators):
            raise ValueError("sampler state has a different number of replicas")
        for g, s in zip(self.generators, state["generators"]):
            g.set_state(s)
        buf = state["buffer"]
        self.buffer = None if buf is None else buf.to(self.device)
        self.pos = int(state["pos"])


def _gather_rows(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]`` for an index tensor ``idx`` of any shape, as one ``index_select``
    (3-4x faster than advanced indexing for the ``(M, B)`` minibatch indices)."""
    return t.index_select(0, idx.reshape(-1)).view(*idx.shape, *t.shape[1:])


# ----------------------------------------------------------------------------- trainer


class EnsembleTrainer:
    """M replicas of one architecture trained by plain SGD in one vectorised computation.

    Parameters
    ----------
    model_fn : callable ``() -> nn.Module``
        Factory of the architecture (e.g. ``lambda: MLP(64, 200, 10, depth=4)``).  It is
        called once per replica with the global torch RNG seeded from that replica's seed
        (the caller's RNG state is restored afterwards).  Modules must hold no buffers that
        change in training (no train-mode BatchNorm).
    n_replicas : int >= 1
        Ensemble size M.
    x, y : tensors ``(N, ...)``, ``(N, ...)``
        Training inputs and targets (moved to ``device``).
    lr : float >= 0 or sequence of M floats
        Learning rate(s) eta; a sequence gives each replica its own (hyperparameter grid).
    batch_size : int >= 1
        Minibatch size B (the same for all replicas).
    weight_decay : float >= 0 or sequence of M floats
        Coupled L2 decay lambda: ``w <- w - eta (g + lambda w)`` (``torch.optim.SGD``).
    loss_fn : callable ``(outputs, targets) -> scalar``, optional
        Mean-reduced loss, default ``torch.nn.functional.cross_entropy``.
    seed : int >= 0
        Base seed; replica m gets seed ``seed * 100003 + m`` unless ``seeds`` is given.
    seeds : sequence of M ints, optional
        Explicit replica seeds.  From replica seed s, independent streams are derived with
        ``numpy.random.SeedSequence([s, 0])`` (initialisation) and ``[s, 1]`` (data).
    sampling : {"replacement", "shuffle"}
        Minibatch scheme, see :class:`ReplicaBatchSampler` (each replica its own stream).
    init : {"per_replica", "shared"}
        Independent initial points, or all replicas starting from replica 0's initial point
        (same start, different noise: trajectory ensembles).
    device : {"auto", "cpu", "cuda"}, torch.device or None
        ``None`` uses the device of ``x``.
    backend : {"auto", "vmap", "fused"}
        How a step is computed.  ``"vmap"``: ``vmap(grad_and_value(loss))`` over the
        stacked parameters, any architecture.  ``"fused"``: hand-written batched
        backpropagation with the update folded into the gradient matmul
        (:mod:`thermo_nb.training.ensemble_fused`); only for a :class:`thermo_nb.models.MLP`
        with a relu/tanh/identity activation and the default cross-entropy loss.
        ``"auto"`` (default) picks ``"fused"`` where it applies.  Both follow the same
        trajectories to float rounding.

    Attributes
    ----------
    params : dict name -> tensor ``(M, *shape)``
        Stacked parameters (updated in place).
    diverged : bool tensor ``(M,)``
        Replicas whose loss or gradient became NaN/inf; they are frozen from then on.
    step_count : int
        SGD steps taken.
    backend : str
        ``"vmap"`` or ``"fused"``: the one in use.

    Notes
    -----
    One step computes, for every replica m with minibatch ``b_m``,
    ``w_m <- w_m - eta_m (grad L_{b_m}(w_m) + lambda_m w_m)``, evaluated as
    ``w_m <- (1 - eta_m lambda_m) w_m - eta_m grad`` (fused ``addcmul_``), with
    ``vmap(grad_and_value(loss))`` over the stacked parameters and the stacked minibatches
    ``(M, B, ...)`` (``backend="vmap"``), or with the gradient matmul and the update fused
    (``backend="fused"``, see :func:`thermo_nb.training.ensemble_fused.fused_mlp_sgd_step`).
    One host synchronisation per step (checking for diverged replicas) is the only one.
    Measured on the project's 2 CPU cores with the default allocator (fair protocol of
    ``benchmarks/bench_ensemble.py``, ratios of minima), 50 MLPs 4 x 200, batch 10: the
    fused step is 4.6-8.1x (2 threads, 5 runs) and 2.5-2.7x (1 thread, 4 runs) faster than
    the best plain loop (one ``SGD(foreach=True)`` over all replicas); why 1 thread stays
    under 5x: ``benchmarks/README.md`` and ``benchmarks/results_ensemble_profile.md``.

    Examples
    --------
    >>> from thermo_nb.models import MLP
    >>> x, y = torch.randn(100, 5), torch.randint(0, 3, (100,))
    >>> tr = EnsembleTrainer(lambda: MLP(5, 16, 3, depth=1), 4, x, y, lr=0.1, batch_size=10)
    >>> tr.step().shape, tr.flat_params().shape
    (torch.Size([4]), torch.Size([4, 147]))
    """

    def __init__(
        self,
        model_fn: Callable[[], nn.Module],
        n_replicas: int,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        lr,
        batch_size: int,
        weight_decay=0.0,
        loss_fn: "Callable | None" = None,
        seed: int = 0,
        seeds: "Sequence[int] | None" = None,
        sampling: str = "replacement",
        init: str = "per_replica",
        device=None,
        backend: str = "auto",
    ):
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ValueError("x and y must be torch tensors")
        if x.shape[0] < 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"x and y must share a non-empty first dimension, got "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
        self.device = x.device if device is None else resolve_device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.n_replicas = n_replicas
        self.seeds = _replica_seeds(n_replicas, seed, seeds)
        if backend not in BACKEND_CHOICES:
            raise ValueError(
                f"backend must be one of {list(BACKEND_CHOICES)}, got {backend!r}"
            )
        self.loss_fn = torch.nn.functional.cross_entropy if loss_fn is None else loss_fn
        models = _build_replicas(model_fn, self.seeds, init, self.device)
        params, buffers = stack_module_state(models)
        self.params = {k: v.detach().clone() for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        self.spec = param_spec(models[0])
        dtype = next(iter(self.params.values())).dtype
        self.lr = _per_replica(lr, "lr", n_replicas, self.device, dtype)
        self.weight_decay = _per_replica(
            weight_decay, "weight_decay", n_replicas, self.device, dtype
        )
        self._use_wd = bool((self.weight_decay > 0).any())
        self.batch_size = batch_size
        self.sampler = ReplicaBatchSampler(
            self.x.shape[0], batch_size, self.seeds, sampling, self.device
        )
        self.diverged = torch.zeros(n_replicas, dtype=torch.bool, device=self.device)
        self.step_count = 0
        self._fused_layers = (
            None
            if backend == "vmap"
            else fused_mlp_layers(
                models[0], self.params, loss_fn, self.x, self.y, self.buffers
            )
        )
        if backend == "fused" and self._fused_layers is None:
            raise ValueError(
                f"backend='fused' needs {FUSED_REQUIREMENTS}; use "
                "backend='vmap' (or 'auto') for anything else"
            )
        self.backend = "vmap" if self._fused_layers is None else "fused"
        self._activation = getattr(models[0], "activation", None)
        self._base = copy.deepcopy(models[0]).to("meta")  # stateless skeleton
        self._grad_and_loss = vmap(grad_and_value(self._loss_one), in_dims=(0, 0, 0, 0))
        self._grad_full = vmap(grad(self._loss_one), in_dims=(0, 0, None, None))
        self._forward_shared = vmap(self._forward_one, in_dims=(0, 0, None))

    # -- functional pieces
    def _forward_one(self, params, buffers, xb):
        return functional_call(self._base, (params, buffers), (xb,))

    def _loss_one(self, params, buffers, xb, yb):
        return self.loss_fn(self._forward_one(params, buffers, xb), yb)

    def _view(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, *([1] * (like.dim() - 1)))

    # -- training
    def step(self) -> torch.Tensor:
        """One SGD step for every replica.

        Returns
        -------
        torch.Tensor ``(M,)``
            Each replica's minibatch loss *before* the update.  A replica whose loss is
            NaN/inf is flagged in :attr:`diverged` and no longer updated (its parameters
            stay at the first state with a non-finite loss).  Divergence is detected from
            the loss: a non-finite gradient with a finite loss shows up as a non-finite
            loss one step later.
        """
        idx = self.sampler.next()
        xb, yb = _gather_rows(self.x, idx), _gather_rows(self.y, idx)
        if self.backend == "fused":
            losses = fused_mlp_sgd_step(
                self.params,
                self._fused_layers,
                self._activation,
                xb,
                yb,
                self.lr,
                self.weight_decay if self._use_wd else None,
                self.diverged,
            )
            self.step_count += 1
            return losses
        grads, losses = self._grad_and_loss(self.params, self.buffers, xb, yb)
        self.diverged |= ~torch.isfinite(losses)
        # Fast path (one host sync, free on CPU): while every replica is healthy the update
        # is a single fused pass per tensor; once one has diverged, its update is masked.
        all_healthy = not bool(self.diverged.any())
        neg_lr = -self.lr if all_healthy else torch.where(self.diverged, 0.0, -self.lr)
        keep = 1.0 - self.lr * self.weight_decay
        with torch.no_grad():
            for k, p in self.params.items():
                g = grads[k]
                if not all_healthy:
                    g = torch.where(self._view(self.diverged, g), 0.0, g)
                if self._use_wd:
                    p.mul_(self._view(torch.where(self.diverged, 1.0, keep), p))
                p.addcmul_(g, self._view(neg_lr, p))
        self.step_count += 1
        return losses.detach()

    def train(
        self,
        n_steps: int,
        *,
        record_every: int = 1,
        cache=None,
        name: str = "ensemble",
        params: "dict | None" = None,
        checkpoint_every: int = 100,
        desc: "str | None" = None,
    ) -> torch.Tensor:
        """Run ``n_steps`` steps with a progress bar; optionally resumable.

        Parameters
        ----------
        n_steps : int >= 0
        record_every : int >= 1
            Keep the minibatch losses of every ``record_every``-th step.
        cache : thermo_nb.runtime.ResultCache, optional
            If given, the run goes through ``run_resumable`` under ``(name, params)``:
            checkpoints every ``checkpoint_every`` steps, and a re-run resumes (or returns
            the finished result) with bit-identical final parameters on CPU.
        name, params : key of the cached run (``params`` must describe everything that
            defines the ensemble: architecture, data, lr, seeds, ...).

        Returns
        -------
        torch.Tensor ``(n_records, M)`` on the CPU
            Recorded minibatch losses (nats for cross-entropy).
        """
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
            raise ValueError(f"n_steps must be an int >= 0, got {n_steps!r}")
        if not isinstance(record_every, int) or record_every < 1:
            raise ValueError(
                f"record_every must be a positive int, got {record_every!r}"
            )
        if cache is None:
            records = []
            for i in progress(
                range(n_steps), total=n_steps, desc=desc or "ensemble SGD"
            ):
                loss = self.step()
                if (i + 1) % record_every == 0:
                    records.append(loss)
            return (
                torch.stack(records).cpu()
                if records
                else torch.empty(0, self.n_replicas)
            )

        n_records = n_steps // record_every

        def init():  # one preallocated (n_records, M) tensor: cheap to pickle at checkpoints
            return {
                "trainer": self.state_dict(),
                "losses": torch.full(
                    (n_records, self.n_replicas), float("nan"), dtype=self.lr.dtype
                ),
            }

        def step(state, i):
            if state["trainer"]["step_count"] != self.step_count:  # resumed from disk
                self.load_state_dict(state["trainer"])
            loss = self.step()
            if (i + 1) % record_every == 0:
                state["losses"][(i + 1) // record_every - 1] = loss.cpu()
            state["trainer"] = self.state_dict(copy=False)
            return state

        key = dict(
            params or {},
            n_steps=n_steps,
            record_every=record_every,
            start_step=self.step_count,
        )
        final = run_resumable(
            cache,
            name,
            key,
            init,
            step,
            n_steps,
            checkpoint_every=checkpoint_every,
            desc=desc or name,
        )
        if final["trainer"]["step_count"] != self.step_count:
            self.load_state_dict(final["trainer"])
        return final["losses"]

    # -- read-out
    def flat_params(self) -> torch.Tensor:
        """Parameters as one row per replica, ``(M, P)`` (a copy, detached)."""
        return flatten_params(self.params, batch_dims=1).detach().clone()

    def set_flat_params(self, flat: torch.Tensor) -> None:
        """Overwrite all replicas' parameters from an ``(M, P)`` tensor."""
        if tuple(flat.shape) != (self.n_replicas, self.spec.n_params):
            raise ValueError(
                f"flat must have shape {(self.n_replicas, self.spec.n_params)}, "
                f"got {tuple(flat.shape)}"
            )
        for k, v in unflatten_params(flat.to(self.device), self.spec).items():
            self.params[k].copy_(v)

    def _chunks(self, x, y, batch_size):
        x = self.x if x is None else x.to(self.device)
        y = self.y if y is None else y.to(self.device)
        if x.shape[0] != y.shape[0] or x.shape[0] < 1:
            raise ValueError("x and y must share a non-empty first dimension")
        n = x.shape[0]
        return n, [
            (x[i : i + batch_size], y[i : i + batch_size])
            for i in range(0, n, batch_size)
        ]

    @torch.no_grad()
    def full_loss(
        self,
        x: "torch.Tensor | None" = None,
        y: "torch.Tensor | None" = None,
        batch_size: int = 4096,
    ) -> torch.Tensor:
        """Mean loss of every replica on ``(x, y)`` (default: the training set), ``(M,)``.

        Evaluated in chunks of ``batch_size`` examples (mean-reduced ``loss_fn`` assumed).
        """
        n, chunks = self._chunks(x, y, batch_size)
        total = torch.zeros(self.n_replicas, device=self.device, dtype=torch.float64)
        for xb, yb in chunks:
            out = self._forward_shared(self.params, self.buffers, xb)  # (M, b, ...)
            losses = vmap(self.loss_fn, in_dims=(0, None))(out, yb)
            total += losses.double() * xb.shape[0]
        return (total / n).to(next(iter(self.params.values())).dtype)

    @torch.no_grad()
    def accuracy(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096
    ) -> torch.Tensor:
        """Fraction of correct arg-max predictions per replica, ``(M,)``."""
        n, chunks = self._chunks(x, y, batch_size)
        correct = torch.zeros(self.n_replicas, device=self.device)
        for xb, yb in chunks:
            out = self._forward_shared(self.params, self.buffers, xb)
            correct += (out.argmax(dim=-1) == yb).float().sum(dim=1)
        return correct / n

    def per_replica_grad(
        self,
        x: "torch.Tensor | None" = None,
        y: "torch.Tensor | None" = None,
        batch_size: int = 4096,
    ) -> torch.Tensor:
        """Gradient of each replica's mean loss on ``(x, y)`` (default: the full training
        set, i.e. the full-batch gradient G), flattened: ``(M, P)``."""
        n, chunks = self._chunks(x, y, batch_size)
        total = None
        for xb, yb in chunks:
            g = flatten_params(
                self._grad_full(self.params, self.buffers, xb, yb), batch_dims=1
            )
            g = g * (xb.shape[0] / n)
            total = g if total is None else total + g
        return total.detach()

    # -- checkpoints
    def state_dict(self, copy: bool = True) -> dict:
        """Everything needed to continue bit-identically: parameters, buffers, divergence
        flags, step counter, per-replica learning rates and the samplers' RNG states.
        ``copy=False`` returns references to the live tensors (pickle them at once)."""
        c = (lambda t: t.detach().clone()) if copy else (lambda t: t)
        return {
            "params": {k: c(v) for k, v in self.params.items()},
            "buffers": {k: c(v) for k, v in self.buffers.items()},
            "diverged": c(self.diverged),
            "step_count": self.step_count,
            "lr": c(self.lr),
            "weight_decay": c(self.weight_decay),
            "sampler": self.sampler.state_dict(),
            "seeds": list(self.seeds),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (from any device) into this trainer."""
        if list(state.get("seeds", [])) != list(self.seeds):
            raise ValueError(
                "state was saved by an ensemble with different replica seeds"
            )
        if set(state["params"]) != set(self.params):
            raise ValueError("state has different parameter names than this ensemble")
        with torch.no_grad():
            for k, v in state["params"].items():
                if tuple(v.shape) != tuple(self.params[k].shape):
                    raise ValueError(
                        f"parameter {k!r}: saved shape {tuple(v.shape)} differs "
                        f"from {tuple(self.params[k].shape)}"
                    )
                self.params[k].copy_(v)
            for k, v in state["buffers"].items():
                self.buffers[k].copy_(v)
            self.diverged.copy_(state["diverged"])
            self.lr.copy_(state["lr"])
            self.weight_decay.copy_(state["weight_decay"])
        self._use_wd = bool((self.weight_decay > 0).any())
        self.step_count = int(state["step_count"])
        self.sampler.load_state_dict(state["sampler"])


# ----------------------------------------------------------------------------- reference

#: how :class:`LoopEnsemble` updates its replicas
LOOP_UPDATES = ("autograd_grad", "foreach_sgd")


class LoopEnsemble:
    """The ensemble of :class:`EnsembleTrainer` as M ordinary modules in a Python loop.

    Same arguments, seeds, initial points and minibatch indices as the trainer; each
    replica is an ordinary ``nn.Module`` with its own forward and backward pass.  It is
    what the vectorised trainer is tested against and benchmarked against
    (``benchmarks/bench_ensemble.py``).

    Parameters
    ----------
    model_fn, n_replicas, x, y, lr, batch_size, weight_decay, loss_fn, seed, seeds, \
    sampling, init, device
        As for :class:`EnsembleTrainer`.
    update : {"autograd_grad", "foreach_sgd"}
        ``"autograd_grad"`` (:func:`train_loop_reference`): per replica,
        ``torch.autograd.grad`` and an in-place ``p.add_(g, alpha=-lr)`` per tensor.
        ``"foreach_sgd"``: the fastest plain loop measured: per replica
        ``loss.backward()``, then *one* ``torch.optim.SGD(..., foreach=True)`` step over
        the parameters of all replicas (one parameter group per distinct
        ``(lr, weight_decay)``, so a scalar ``lr`` is one multi-tensor update).  Its weight
        decay is SGD's ``g + lambda w``, equal to the trainer's to float rounding.

    Notes
    -----
    A replica whose loss is NaN/inf is frozen from then on, as in the trainer.
    """

    def __init__(
        self,
        model_fn: Callable[[], nn.Module],
        n_replicas: int,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        lr,
        batch_size: int,
        weight_decay=0.0,
        loss_fn: "Callable | None" = None,
        seed: int = 0,
        seeds: "Sequence[int] | None" = None,
        sampling: str = "replacement",
        init: str = "per_replica",
        device=None,
        update: str = "autograd_grad",
    ):
        if update not in LOOP_UPDATES:
            raise ValueError(
                f"update must be one of {list(LOOP_UPDATES)}, got {update!r}"
            )
        dev = x.device if device is None else resolve_device(device)
        self.x, self.y = x.to(dev), y.to(dev)
        self.update = update
        seeds = _replica_seeds(n_replicas, seed, seeds)
        self.loss_fn = torch.nn.functional.cross_entropy if loss_fn is None else loss_fn
        self.models = _build_replicas(model_fn, seeds, init, dev)
        self.dtype = next(self.models[0].parameters()).dtype
        lr_t = _per_replica(lr, "lr", n_replicas, "cpu", self.dtype)
        wd_t = _per_replica(weight_decay, "weight_decay", n_replicas, "cpu", self.dtype)
        self.lrs, self.wds = lr_t.tolist(), wd_t.tolist()
        self.keeps = (1.0 - lr_t * wd_t).tolist()  # same rounding as the trainer
        self.sampler = ReplicaBatchSampler(x.shape[0], batch_size, seeds, sampling, dev)
        self.diverged = [False] * n_replicas
        self.optimizer = self._foreach_sgd() if update == "foreach_sgd" else None

    def _foreach_sgd(self) -> torch.optim.SGD:
        """One SGD over all replicas' parameters, one group per ``(lr, weight_decay)``."""
        groups: dict = {}
        for net, lr, wd in zip(self.models, self.lrs, self.wds):
            groups.setdefault((lr, wd), []).extend(net.parameters())
        return torch.optim.SGD(
            [
                {"params": ps, "lr": lr, "weight_decay": wd}
                for (lr, wd), ps in groups.items()
            ],
            lr=self.lrs[0],
            foreach=True,
        )

    def step(self) -> torch.Tensor:
        """One SGD step of every replica; returns the minibatch losses ``(M,)`` before it."""
        idx = self.sampler.next()
        losses = torch.full((len(self.models),), float("nan"), dtype=self.dtype)
        if self.update == "foreach_sgd":
            self._step_foreach_sgd(idx, losses)
        else:
            self._step_autograd_grad(idx, losses)
        return losses

    def _step_autograd_grad(self, idx: torch.Tensor, losses: torch.Tensor) -> None:
        for m, net in enumerate(self.models):
            params = list(net.parameters())
            loss = self.loss_fn(net(self.x[idx[m]]), self.y[idx[m]])
            grads = torch.autograd.grad(loss, params)
            losses[m] = loss.detach()
            if self.diverged[m]:
                continue
            if not torch.isfinite(loss):
                self.diverged[m] = True
                continue
            with torch.no_grad():
                for p, g in zip(params, grads):
                    if self.wds[m] > 0:
                        p.mul_(self.keeps[m])
                    p.add_(g, alpha=-self.lrs[m])

    def _step_foreach_sgd(self, idx: torch.Tensor, losses: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        for m, net in enumerate(self.models):
            loss = self.loss_fn(net(self.x[idx[m]]), self.y[idx[m]])
            losses[m] = loss.detach()
            self.diverged[m] = self.diverged[m] or not bool(torch.isfinite(loss))
            if not self.diverged[m]:  # frozen replicas keep grad None: SGD skips them
                loss.backward()
        self.optimizer.step()

    def flat_params(self) -> torch.Tensor:
        """Parameters as one row per replica, ``(M, P)`` (detached)."""
        return torch.stack([flatten_params(net).detach() for net in self.models])


def train_loop_reference(
    model_fn: Callable[[], nn.Module],
    n_replicas: int,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr,
    batch_size: int,
    n_steps: int,
    weight_decay=0.0,
    loss_fn: "Callable | None" = None,
    seed: int = 0,
    seeds: "Sequence[int] | None" = None,
    sampling: str = "replacement",
    init: str = "per_replica",
    device=None,
    update: str = "autograd_grad",
) -> dict:
    """The same ensemble as :class:`EnsembleTrainer`, trained by a plain Python loop.

    Same arguments and the same seeds, initial points and minibatch indices; each replica
    is an ordinary ``nn.Module`` updated one at a time (:class:`LoopEnsemble`; ``update``
    chooses ``torch.autograd.grad`` per replica, the default, or one
    ``torch.optim.SGD(foreach=True)`` over all replicas).  Used to test the vectorised
    trainer and to benchmark it.

    Returns
    -------
    dict
        ``flat_params`` ``(M, P)``, ``losses`` ``(n_steps, M)`` (minibatch loss before each
        update), ``diverged`` ``(M,)`` bool.
    """
    loop = LoopEnsemble(
        model_fn,
        n_replicas,
        x,
        y,
        lr=lr,
        batch_size=batch_size,
        weight_decay=weight_decay,
        loss_fn=loss_fn,
        seed=seed,
        seeds=seeds,
        sampling=sampling,
        init=init,
        device=device,
        update=update,
    )
    losses = torch.full((n_steps, n_replicas), float("nan"), dtype=loop.dtype)
    for t in range(n_steps):
        losses[t] = loop.step()
    return {
        "flat_params": loop.flat_params(),
        "losses": losses,
        "diverged": torch.tensor(loop.diverged, dtype=torch.bool),
    }
