"""Projected SGD on a sphere for scale-invariant networks, vectorised over an ensemble.

The free-energy paper (Sadrtdinov et al., arXiv:2505.23489) trains scale-invariant (SI)
networks (:mod:`thermo_nb.models.scale_invariant`) with plain SGD whose SI weights are
**jointly** rescaled back to the unit sphere after every step; the ideal-gas paper
(arXiv:2511.07308) adds weight decay and two protocols in which the norm is free.
:class:`SphereSGD` runs M replicas of one architecture in one vectorised computation
(it is an :class:`~thermo_nb.training.ensemble.EnsembleTrainer` with its own step), each
replica with its own learning rate, weight decay, momentum and radius, so a whole
hyperparameter grid is one ensemble.  :func:`sphere_sgd_reference` is the plain Python
loop over the same replicas, seeds and minibatches that the ensemble is tested against.

One step of replica m (SI weights ``w``, minibatch gradient ``g``, coupled weight decay
``lambda``, momentum ``mu``, buffer ``v``), written as ``torch.optim.SGD`` does::

    d = g + lambda * w ;  v = mu * v + d  (v = d when mu = 0) ;  w <- w - lr_t * v

with the per-step learning rate ``lr_t`` set by the protocol:

* ``"fixed_sphere"`` (paper 1 and paper 2's fixed sphere): ``lr_t = eta * r0**2``, then
  ``w <- r0 * w / ||w||`` (joint norm over all SI tensors; a retraction, since the
  gradient of an SI loss is orthogonal to ``w``);
* ``"fixed_lr"``: ``lr_t = eta``, no projection (the norm is free; weight decay > 0 keeps
  it bounded);
* ``"fixed_elr"``: ``lr_t = eta * ||w||**2`` recomputed before every step, so the angular
  ("effective") learning rate ``lr_t / ||w||**2 = eta`` is constant; no projection.

In every protocol the initial SI weights are rescaled to norm ``radius`` (the papers'
``si_pnorm_0``) and :attr:`SphereSGD.last_radius` holds the norm *after* the SGD step and
*before* any projection (what the ideal-gas paper's pressure is measured from).  A
replica whose loss or weights become non-finite is flagged in ``diverged`` and frozen;
nothing raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..models import flatten_params
from ..models.scale_invariant import joint_norm
from ..runtime import resolve_device
from .ensemble import (
    EnsembleTrainer,
    ReplicaBatchSampler,
    _build_replicas,
    _per_replica,
    _replica_seeds,
)

PROTOCOLS = ("fixed_sphere", "fixed_lr", "fixed_elr")


def _check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    return protocol


class SphereSGD(EnsembleTrainer):
    """M replicas of a scale-invariant network trained by (projected) SGD in one batch.

    Parameters
    ----------
    model_fn : callable ``() -> nn.Module``
        Factory of an SI architecture whose trainable parameters are all scale-invariant
        and whose frozen parts are buffers (e.g. ``lambda: ScaleInvariantMLP(64, 16, 10)``).
    n_replicas : int >= 1
        Ensemble size M (e.g. the number of learning rates of a grid).
    x, y : tensors ``(N, ...)``, ``(N,)``
        Training set (moved to ``device``).
    lr : float > 0 or sequence of M floats
        The learning rate ``eta`` of each replica (its meaning depends on ``protocol``, see
        the module docstring; on the unit sphere it is the effective learning rate).
    batch_size : int >= 2
        Minibatch size B (>= 2: the batch normalisation needs two examples).
    weight_decay : float >= 0 or sequence of M floats
        Coupled L2 decay ``lambda``.
    momentum : float in [0, 1) or sequence of M floats
        Heavy-ball momentum ``mu`` (``torch.optim.SGD`` convention, no dampening); the
        papers use 0.  With projection, the buffer is kept in ambient coordinates.
    protocol : {"fixed_sphere", "fixed_lr", "fixed_elr"}
    radius : float > 0 or sequence of M floats
        Initial SI norm, and the sphere radius ``r0`` of ``"fixed_sphere"``.
    loss_fn, seed, seeds, sampling, device
        As in :class:`~thermo_nb.training.ensemble.EnsembleTrainer`;
        ``sampling="replacement"`` (the default) draws every batch i.i.d. with
        replacement, as the papers do.
    init : {"shared", "per_replica"}
        ``"shared"`` (default): every replica starts from replica 0's initial point, as
        the papers use one initial point for every learning rate.
    si_names : sequence of str, optional
        Names of the parameters to train and project; default: every parameter.  Others
        are left untouched (learning rate 0).

    Attributes
    ----------
    last_radius : tensor ``(M,)``
        Joint SI norm after the last SGD step, before projection (float64).
    momentum_buffers : dict name -> tensor ``(M, *shape)``
        Empty when every ``mu`` is 0.

    Examples
    --------
    >>> from thermo_nb.models.scale_invariant import ScaleInvariantMLP, joint_norm
    >>> x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    >>> tr = SphereSGD(lambda: ScaleInvariantMLP(5, 8, 3), 3, x, y,
    ...                lr=[0.01, 0.1, 1.0], batch_size=16)
    >>> _ = tr.step()
    >>> [round(float(r), 6) for r in joint_norm(tr.params, batch_dims=1)]
    [1.0, 1.0, 1.0]
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
        momentum=0.0,
        protocol: str = "fixed_sphere",
        radius=1.0,
        loss_fn: "Callable | None" = None,
        seed: int = 0,
        seeds: "Sequence[int] | None" = None,
        sampling: str = "replacement",
        init: str = "shared",
        device=None,
        si_names: "Sequence[str] | None" = None,
    ):
        self.protocol = _check_protocol(protocol)
        if isinstance(batch_size, int) and not isinstance(batch_size, bool):
            if batch_size < 2:
                raise ValueError(
                    f"batch_size must be >= 2 (batch normalisation), got {batch_size}"
                )
        super().__init__(
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
            backend="vmap",
        )
        dtype = self.lr.dtype
        if bool((self.lr <= 0).any()):
            raise ValueError(f"lr must be > 0 for every replica, got {lr!r}")
        self.momentum = _per_replica(
            momentum, "momentum", n_replicas, self.device, dtype
        )
        if bool((self.momentum >= 1).any()):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.radius = _per_replica(radius, "radius", n_replicas, self.device, dtype)
        if bool((self.radius <= 0).any()):
            raise ValueError(f"radius must be > 0, got {radius!r}")
        names = list(self.params) if si_names is None else list(si_names)
        unknown = [n for n in names if n not in self.params]
        if unknown or not names:
            raise ValueError(
                f"si_names must be a non-empty subset of {list(self.params)}, "
                f"got {si_names!r}"
            )
        self.si_names = names
        self.momentum_buffers: dict = {}
        with torch.no_grad():  # start on the sphere of radius r0 (si_pnorm_0)
            scale = self.radius / self.si_norm().to(dtype)
            for n in self.si_names:
                self.params[n].mul_(self._view(scale, self.params[n]))
        self.last_radius = self.si_norm()

    # -- geometry
    def si_norm(self) -> torch.Tensor:
        """Joint norm of every replica's SI weights, ``(M,)`` float64."""
        return joint_norm({n: self.params[n] for n in self.si_names}, batch_dims=1)

    def flat_si_params(self) -> torch.Tensor:
        """The SI weights as one row per replica, ``(M, D)`` (a detached copy)."""
        return flatten_params(
            {n: self.params[n] for n in self.si_names}, batch_dims=1
        ).clone()

    def _step_size(self) -> torch.Tensor:
        if self.protocol == "fixed_sphere":
            return self.lr * self.radius**2
        if self.protocol == "fixed_elr":
            return self.lr * self.si_norm().to(self.lr.dtype) ** 2
        return self.lr.clone()

    # -- training
    def step(self) -> torch.Tensor:
        """One (projected) SGD step of every replica; returns the minibatch losses
        ``(M,)`` before the update (see :meth:`EnsembleTrainer.step`)."""
        idx = self.sampler.next()
        grads, losses = self._grad_and_loss(
            self.params, self.buffers, self.x[idx], self.y[idx]
        )
        self.diverged |= ~torch.isfinite(losses)
        with torch.no_grad():
            lr_t = torch.where(self.diverged, 0.0, self._step_size())
            use_mom = bool((self.momentum > 0).any())
            for n in self.si_names:
                p = self.params[n]
                d = torch.where(self._view(self.diverged, p), 0.0, grads[n])
                if self._use_wd:
                    d = d + self._view(self.weight_decay, p) * p
                if use_mom:
                    buf = self.momentum_buffers.get(n)
                    if buf is None:  # first step: v = d (torch.optim.SGD)
                        buf = self.momentum_buffers[n] = d.clone()
                    else:
                        buf.mul_(self._view(self.momentum, p)).add_(d)
                    d = buf
                p.sub_(self._view(lr_t, p) * d)
            norm = self.si_norm()
            self.last_radius = norm
            bad = ~torch.isfinite(norm) | (norm <= 0)
            self.diverged |= bad
            if self.protocol == "fixed_sphere":
                scale = torch.where(
                    bad, 1.0, self.radius.double() / torch.where(bad, 1.0, norm)
                ).to(self.lr.dtype)
                for n in self.si_names:
                    self.params[n].mul_(self._view(scale, self.params[n]))
        self.step_count += 1
        return losses.detach()

    # -- gradient statistics (the paper's SNR)
    def gradient_statistics(
        self,
        n_batches: int,
        *,
        batch_size: "int | None" = None,
        generator: "torch.Generator | None" = None,
        full_chunk: "int | None" = None,
    ) -> dict:
        r"""Full and stochastic gradient norms and the SNR at the current weights.

        Parameters
        ----------
        n_batches : int >= 2
            Number K of independent minibatch gradients (the paper: 1000).
        batch_size : int, optional
            Their size (default: the training batch size), drawn with replacement from
            ``generator`` (a separate stream: the training batches are not disturbed).
        generator : torch.Generator, optional
            CPU generator of the minibatch indices (default: seeded from the step count).
        full_chunk : int, optional
            The full gradient is the size-weighted mean of gradients over consecutive
            chunks of this many examples, each with its own batch statistics (the paper:
            1024); default: the whole training set in one chunk.

        Returns
        -------
        dict of numpy arrays ``(M,)`` (float64)
            ``full_grad_norm`` :math:`\|g\|`, ``stoch_grad_mean_norm``
            :math:`\mathbb E\|g_i\|`, ``stoch_grad_rms``
            :math:`(\mathbb E\|g_i-g\|^2)^{1/2}` and ``snr`` = ``full_grad_norm /
            stoch_grad_rms`` (the paper's plotted ``snr_new``; see
            :func:`thermo_nb.gradient_snr`).  Gradients are over the SI weights.
        """
        if (
            isinstance(n_batches, bool)
            or not isinstance(n_batches, int)
            or n_batches < 2
        ):
            raise ValueError(f"n_batches must be an int >= 2, got {n_batches!r}")
        b = self.batch_size if batch_size is None else int(batch_size)
        n = self.x.shape[0]
        gen = (
            torch.Generator().manual_seed(1_000_003 + self.step_count)
            if generator is None
            else generator
        )
        full = self.per_replica_grad(batch_size=full_chunk or n)
        g = self._si_flat(unflat=full).double()
        sum_g = torch.zeros_like(g)
        sum_sq = torch.zeros(self.n_replicas, dtype=torch.float64, device=g.device)
        sum_norm = torch.zeros_like(sum_sq)
        for _ in range(n_batches):
            idx = torch.randint(n, (self.n_replicas, b), generator=gen).to(self.device)
            grads, _ = self._grad_and_loss(
                self.params, self.buffers, self.x[idx], self.y[idx]
            )
            gi = flatten_params(
                {k: grads[k] for k in self.si_names}, batch_dims=1
            ).double()
            sum_g += gi
            sq = (gi * gi).sum(1)
            sum_sq += sq
            sum_norm += sq.sqrt()
        mean_g = sum_g / n_batches
        var = sum_sq / n_batches - 2 * (g * mean_g).sum(1) + (g * g).sum(1)
        rms = var.clamp_min(0).sqrt()
        full_norm = g.norm(dim=1)
        out = {
            "full_grad_norm": full_norm,
            "stoch_grad_mean_norm": sum_norm / n_batches,
            "stoch_grad_rms": rms,
            "snr": torch.where(rms > 0, full_norm / rms, torch.inf),
        }
        return {k: v.cpu().numpy() for k, v in out.items()}

    def _si_flat(self, unflat: torch.Tensor) -> torch.Tensor:
        """Columns of an all-parameter ``(M, P)`` tensor that belong to the SI weights."""
        if len(self.si_names) == len(self.params):
            return unflat
        cols, start = [], 0
        for name, size in zip(self.spec.names, self.spec.numels):
            if name in self.si_names:
                cols.append(unflat[:, start : start + size])
            start += size
        return torch.cat(cols, dim=1)

    # -- checkpoints
    def state_dict(self, copy: bool = True) -> dict:
        """:meth:`EnsembleTrainer.state_dict` plus momentum buffers, radii and protocol."""
        state = super().state_dict(copy=copy)
        c = (lambda t: t.detach().clone()) if copy else (lambda t: t)
        state.update(
            momentum_buffers={k: c(v) for k, v in self.momentum_buffers.items()},
            momentum=c(self.momentum),
            radius=c(self.radius),
            last_radius=c(self.last_radius),
            protocol=self.protocol,
        )
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("protocol", self.protocol) != self.protocol:
            raise ValueError("state was saved with a different protocol")
        super().load_state_dict(state)
        with torch.no_grad():
            self.momentum.copy_(state["momentum"])
            self.radius.copy_(state["radius"])
        self.momentum_buffers = {
            k: v.to(self.device).clone() for k, v in state["momentum_buffers"].items()
        }
        self.last_radius = state["last_radius"].to(self.device).clone()


def sphere_sgd_reference(
    model_fn: Callable[[], nn.Module],
    n_replicas: int,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr,
    batch_size: int,
    n_steps: int,
    weight_decay=0.0,
    momentum=0.0,
    protocol: str = "fixed_sphere",
    radius=1.0,
    loss_fn: "Callable | None" = None,
    seed: int = 0,
    seeds: "Sequence[int] | None" = None,
    sampling: str = "replacement",
    init: str = "shared",
    device=None,
) -> dict:
    """:class:`SphereSGD` written as a plain Python loop over replicas (for tests).

    Same arguments, seeds, initial points and minibatch indices; each replica is an
    ordinary ``nn.Module`` updated one at a time with ``torch.autograd.grad``, its SI
    weights projected with a Python-level joint norm.

    Returns
    -------
    dict
        ``flat_params`` ``(M, P)``, ``losses`` ``(n_steps, M)``, ``radius_before``
        ``(n_steps, M)`` (norm after each step, before projection).
    """
    _check_protocol(protocol)
    dev = x.device if device is None else resolve_device(device)
    x, y = x.to(dev), y.to(dev)
    seeds = _replica_seeds(n_replicas, seed, seeds)
    loss_fn = torch.nn.functional.cross_entropy if loss_fn is None else loss_fn
    models = _build_replicas(model_fn, seeds, init, dev)
    dtype = next(models[0].parameters()).dtype
    as_list = lambda v, name: _per_replica(v, name, n_replicas, "cpu", dtype)  # noqa: E731
    lrs, wds = as_list(lr, "lr"), as_list(weight_decay, "weight_decay")
    mus, radii = as_list(momentum, "momentum"), as_list(radius, "radius")
    sampler = ReplicaBatchSampler(x.shape[0], batch_size, seeds, sampling, dev)

    def norm_of(params):
        return torch.sqrt(sum(p.detach().double().pow(2).sum() for p in params))

    for m, net in enumerate(models):
        with torch.no_grad():
            params = list(net.parameters())
            scale = (radii[m].double() / norm_of(params)).to(dtype)
            for p in params:
                p.mul_(scale)
    buffers = [None] * n_replicas
    losses = torch.full((n_steps, n_replicas), float("nan"), dtype=dtype)
    radius_before = torch.full((n_steps, n_replicas), float("nan"), dtype=torch.float64)
    for t in range(n_steps):
        idx = sampler.next()
        for m, net in enumerate(models):
            params = list(net.parameters())
            loss = loss_fn(net(x[idx[m]]), y[idx[m]])
            grads = torch.autograd.grad(loss, params)
            losses[t, m] = loss.detach()
            with torch.no_grad():
                if protocol == "fixed_sphere":
                    lr_t = lrs[m] * radii[m] ** 2
                elif protocol == "fixed_elr":
                    lr_t = lrs[m] * norm_of(params).to(dtype) ** 2
                else:
                    lr_t = lrs[m]
                ds = [
                    g + wds[m] * p if wds[m] > 0 else g for p, g in zip(params, grads)
                ]
                if mus[m] > 0:
                    if buffers[m] is None:
                        buffers[m] = [d.clone() for d in ds]
                    else:
                        for b, d in zip(buffers[m], ds):
                            b.mul_(mus[m]).add_(d)
                    ds = buffers[m]
                for p, d in zip(params, ds):
                    p.sub_(lr_t * d)
                r = norm_of(params)
                radius_before[t, m] = r
                if protocol == "fixed_sphere":
                    scale = (radii[m].double() / r).to(dtype)
                    for p in params:
                        p.mul_(scale)
    flat = torch.stack([flatten_params(net).detach() for net in models])
    return {"flat_params": flat, "losses": losses, "radius_before": radius_before}


# ----------------------------------------------------------------------------- recording


def _check_log_steps(log_steps, n_steps: int) -> list:
    steps = sorted({int(s) for s in log_steps})
    if not steps or steps[0] < 1 or steps[-1] > n_steps:
        raise ValueError(f"log_steps must be non-empty ints in [1, {n_steps}]")
    return steps


def record_sphere_run(
    trainer: SphereSGD,
    n_steps: int,
    log_steps,
    *,
    window: int = 100,
    entropy_k: int = 20,
    snr_batches: int = 0,
    snr_from: int = 0,
    full_chunk: "int | None" = None,
    seed: int = 0,
    cache=None,
    name: str = "sphere_run",
    params: "dict | None" = None,
    desc: "str | None" = None,
) -> dict:
    r"""Train a :class:`SphereSGD` ensemble and log what the free-energy paper logs.

    Parameters
    ----------
    trainer : SphereSGD
        The ensemble (e.g. one replica per learning rate), at step 0.
    n_steps : int >= 1
        SGD steps.
    log_steps : sequence of int in [1, n_steps]
        Log points (the paper: 193 log-spaced points).
    window : int >= 2
        Number W of consecutive iterates whose k-NN-graph entropy is measured at a log
        point (the paper: 1000).  They are the last W iterates before the log point; when
        fewer than W steps separate it from the previous log point the entropy is NaN.
    entropy_k : int, 2 <= k <= W
        Neighbours K of :func:`thermo_nb.knn_graph_entropy` (the paper: 50).
    snr_batches : int
        Minibatch gradients per log point for the SNR (0 = no gradient statistics; the
        paper: 1000), see :meth:`SphereSGD.gradient_statistics`.
    snr_from : int
        Gradient statistics only at log points ``>= snr_from``.
    full_chunk : int, optional
        Chunk size of the full gradient (the paper: 1024; default: whole set).
    seed : int
        Seed of the SNR minibatches (a separate stream from the training batches).
    cache : ResultCache, optional
        With a cache the run is resumable: a checkpoint after every log point under
        ``(name, params)``; ``params`` must describe the ensemble completely.
    desc : str, optional
        Progress-bar label.

    Returns
    -------
    dict
        ``steps`` (K,), and ``(K, M)`` float64 arrays ``loss`` (full training loss, batch
        statistics over the whole set), ``accuracy`` (training), ``entropy`` (nats, the
        paper's :math:`S_K` with :math:`d = D - 1`, NaN where no full window),
        ``minibatch_loss`` (mean over the window's steps), ``full_grad_norm``,
        ``stoch_grad_mean_norm``, ``stoch_grad_rms``, ``snr`` (NaN where not measured);
        ``diverged`` (M,) bool and ``dim`` (D).

    Notes
    -----
    The paper's entropy estimator: the K nearest neighbours of every iterate within the
    window, :math:`S_K = d[\log L_K - \frac{d-1}{d}\log W]` with :math:`d = D - 1`
    (the sphere's dimension); see :func:`thermo_nb.knn_graph_entropy`.  Only differences
    at equal (W, K, D) are meaningful.
    """
    from ..estimators.knn import knn_graph_entropy
    from ..runtime import progress, run_resumable

    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    steps = _check_log_steps(log_steps, n_steps)
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an int >= 2, got {window!r}")
    if not (2 <= int(entropy_k) <= window):
        raise ValueError(f"entropy_k must be in [2, window={window}], got {entropy_k}")
    m = trainer.n_replicas
    dim = int(trainer.flat_si_params().shape[1])
    keys = (
        "loss",
        "accuracy",
        "entropy",
        "minibatch_loss",
        "full_grad_norm",
        "stoch_grad_mean_norm",
        "stoch_grad_rms",
        "snr",
    )

    def init():
        return {
            "trainer": trainer.state_dict(),
            "records": {k: np.full((len(steps), m), np.nan) for k in keys},
        }

    def segment(state, j):
        if state["trainer"]["step_count"] != trainer.step_count:  # resumed from disk
            trainer.load_state_dict(state["trainer"])
        start = trainer.step_count
        stop = steps[j]
        n_win = min(window, stop - start)
        win = None
        batch_losses = []
        for t in range(start, stop):
            loss = trainer.step()
            if t >= stop - n_win:
                if win is None:
                    win = torch.empty(
                        (m, n_win, dim), dtype=torch.float32, device=trainer.device
                    )
                win[:, t - (stop - n_win)] = trainer.flat_si_params()
                batch_losses.append(loss.double())
        rec = state["records"]
        rec["loss"][j] = trainer.full_loss().double().cpu().numpy()
        rec["accuracy"][j] = trainer.accuracy(trainer.x, trainer.y).cpu().numpy()
        if batch_losses:
            rec["minibatch_loss"][j] = torch.stack(batch_losses).mean(0).cpu().numpy()
        if n_win == window:
            for r in range(m):
                if not bool(trainer.diverged[r]):
                    rec["entropy"][j, r] = knn_graph_entropy(
                        win[r], k=int(entropy_k), intrinsic_dim=max(dim - 1, 2)
                    )
        if snr_batches and stop >= snr_from:
            gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + stop)
            stats = trainer.gradient_statistics(
                int(snr_batches), generator=gen, full_chunk=full_chunk
            )
            for k, v in stats.items():
                rec[k][j] = v
        state["trainer"] = trainer.state_dict(copy=False)
        return state

    if cache is None:
        state = init()
        for j in progress(range(len(steps)), desc=desc or name):
            state = segment(state, j)
    else:
        key = dict(
            params or {},
            n_steps=n_steps,
            log_steps=steps,
            window=window,
            entropy_k=int(entropy_k),
            snr_batches=int(snr_batches),
            snr_from=int(snr_from),
            full_chunk=full_chunk,
            seed=int(seed),
        )
        state = run_resumable(
            cache,
            name,
            key,
            init,
            segment,
            len(steps),
            checkpoint_every=1,
            desc=desc or name,
        )
        if state["trainer"]["step_count"] != trainer.step_count:
            trainer.load_state_dict(state["trainer"])
    out = {k: np.asarray(v) for k, v in state["records"].items()}
    out["steps"] = np.array(steps)
    out["diverged"] = trainer.diverged.cpu().numpy().copy()
    out["dim"] = dim
    return out
