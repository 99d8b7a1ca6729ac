"""Batch size and gradient noise.

McCandlish et al.'s (2018) steps-versus-batch law ``S = S_min (1 + B_noise / B)`` and its
fit, the expected squared norm of a batch-mean gradient ``|G|^2 + tr(Sigma)/m`` and its
measurement, and the steps-to-target-versus-batch sweep that the chapter
``book/dimensional_analysis.ipynb`` calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._validation import positive_array

if TYPE_CHECKING:
    import torch

__all__ = [
    "mccandlish_steps",
    "fit_steps_vs_batch",
    "batch_gradient_norm_sq_expected",
    "batch_gradient_norms",
    "steps_to_target_vs_batch",
]


# ----------------------------------------------------------------------------- batch size


def mccandlish_steps(B, S_min: float, B_noise: float):
    """Steps to a target loss at batch size B: ``S = S_min (1 + B_noise / B)``.

    Parameters
    ----------
    B : array_like
        Batch sizes (examples), > 0.
    S_min : float
        Steps needed with an infinite batch.
    B_noise : float
        Noise scale (examples); equals ``B_crit = E_min / S_min`` in this model.

    Returns
    -------
    ndarray
        Steps.

    Notes
    -----
    McCandlish et al. 2018 (arXiv 1812.06162), Eq. 2.11 in the form
    ``(S/S_min - 1)(E/E_min - 1) = 1`` with ``E = B S`` and ``B_crit = E_min/S_min = B_noise``
    (Eq. 2.12).

    Examples
    --------
    >>> float(mccandlish_steps(100.0, 20.0, 100.0))
    40.0
    """
    B = positive_array("B", B)
    return S_min * (1.0 + B_noise / B)


def fit_steps_vs_batch(B, S) -> dict:
    """Fit ``S = S_min (1 + B_crit / B)`` to steps-to-target ``S`` at batch sizes ``B``.

    Parameters
    ----------
    B, S : array_like, shape (n,)
        Batch sizes and steps to reach the target (> 0, finite; drop diverged runs first);
        ``n >= 3``.

    Returns
    -------
    dict
        ``S_min`` (steps), ``E_min = S_min * B_crit`` (examples), ``B_crit = E_min / S_min``
        (examples), their standard errors ``S_min_se``, ``B_crit_se`` (delta method from the
        least-squares covariance in log space), and ``rms_log_residual`` of the fit and of the
        perfect-scaling model ``S = c / B`` (``rms_log_residual_perfect``) and of no scaling
        ``S = c`` (``rms_log_residual_flat``).

    Notes
    -----
    McCandlish et al. (2018), Eqs. 2.11-2.12: ``S = S_min (1 + B_noise/B)``,
    ``E = E_min (1 + B/B_noise)``, ``B_crit = E_min / S_min``. The fit is least squares on
    ``log S`` over ``(log S_min, log B_crit)`` (steps are a multiplicative quantity).
    """
    from scipy.optimize import least_squares

    B, S = positive_array("B", B).ravel(), positive_array("S", S).ravel()
    if B.size != S.size or B.size < 3:
        raise ValueError(
            f"B and S must have the same length >= 3; got {B.size}, {S.size}"
        )
    lB, lS = np.log(B), np.log(S)

    def resid(p):
        return p[0] + np.log1p(np.exp(p[1] - lB)) - lS

    x0 = np.array([lS.min(), np.log(np.median(B))])
    res = least_squares(resid, x0)
    n, dof = B.size, max(B.size - 2, 1)
    s2 = float(res.fun @ res.fun) / dof
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * s2
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(2, np.nan)
    S_min, B_crit = float(np.exp(res.x[0])), float(np.exp(res.x[1]))
    perfect = lS + lB - np.mean(lS + lB)
    flat = lS - lS.mean()
    return {
        "S_min": S_min,
        "B_crit": B_crit,
        "E_min": S_min * B_crit,
        "S_min_se": S_min * se[0],
        "B_crit_se": B_crit * se[1],
        "log_B_crit_se": float(se[1]),
        "rms_log_residual": float(np.sqrt(np.mean(res.fun**2))),
        "rms_log_residual_perfect": float(np.sqrt(np.mean(perfect**2))),
        "rms_log_residual_flat": float(np.sqrt(np.mean(flat**2))),
        "n": n,
    }


def batch_gradient_norm_sq_expected(
    m, G_norm2: float, trace_sigma: float, n_population: int | None = None
):
    """Expected squared norm of a batch-mean gradient of ``m`` samples.

    Parameters
    ----------
    m : array_like
        Batch sizes, > 0.
    G_norm2 : float
        ``|G|^2``, squared norm of the mean gradient.
    trace_sigma : float
        ``tr(Sigma)``, trace of the per-sample gradient covariance.
    n_population : int, optional
        Finite population drawn *without* replacement.

    Returns
    -------
    ndarray
        ``E|g_m|^2`` in squared gradient units.

    Notes
    -----
    ``E|g_m|^2 = |G|^2 + tr(Sigma)/m`` for i.i.d. draws (McCandlish et al. 2018, App. A.1);
    drawing without replacement from ``n_population`` examples multiplies ``tr(Sigma)/m`` by
    ``(n - m)/(n - 1)``. ``Sigma`` is the per-sample gradient covariance (normalised by n
    for a finite population).
    """
    m = positive_array("m", m)
    noise = trace_sigma / m
    if n_population is not None:
        if n_population < 2 or np.any(m > n_population):
            raise ValueError(
                f"n_population must be >= 2 and >= every m; got {n_population}"
            )
        noise = noise * (n_population - m) / (n_population - 1)
    return G_norm2 + noise


def batch_gradient_norms(
    per_sample_grads,
    batch_sizes: Sequence[int],
    *,
    n_draws: int = 64,
    generator: "torch.Generator | None" = None,
) -> dict:
    """Norm of the batch-mean gradient and mean of per-sample norms, against batch size.

    Parameters
    ----------
    per_sample_grads : tensor (n, P)
        One gradient per training example, at the same parameters (a finite population).
    batch_sizes : sequence of int
        Batch sizes m >= 1 (drawn i.i.d. with replacement from the n rows).
    n_draws : int
        Batches drawn per batch size, >= 2.
    generator : torch.Generator, optional
        CPU generator for the draws.

    Returns
    -------
    dict of ndarrays (one entry per m)
        ``m``; ``norm_mean`` = mean over draws of ``|g_m|`` with ``g_m = (1/m) sum_i g_i``
        and its standard error ``norm_mean_se``; ``norm_sq_mean`` = mean of ``|g_m|^2`` and
        ``norm_sq_se``; ``mean_of_norms`` = mean over draws of ``(1/m) sum_i |g_i|``; and the
        population values ``G_norm2`` = ``|G|^2`` and ``trace_sigma`` = ``tr(Sigma)`` (with
        ``Sigma`` normalised by n), so that ``E|g_m|^2 = G_norm2 + trace_sigma/m`` exactly.

    Notes
    -----
    McCandlish et al. (2018), App. A.1: ``E|g_m|^2 = |G|^2 + tr(Sigma)/m`` for i.i.d.
    draws. By Jensen's inequality ``|g_m| <= (1/m) sum_i |g_i|``; the seed's ``1/sqrt(m)``
    scaling of ``|g_m|`` holds only while ``tr(Sigma)/m >> |G|^2``, i.e. ``m << B_simple``.
    """
    import torch

    g = (
        per_sample_grads
        if isinstance(per_sample_grads, torch.Tensor)
        else torch.as_tensor(np.asarray(per_sample_grads))
    )
    if g.ndim != 2 or g.shape[0] < 2:
        raise ValueError(
            f"per_sample_grads must have shape (n >= 2, P); got {tuple(g.shape)}"
        )
    if not torch.isfinite(g).all():
        raise ValueError("per_sample_grads contains NaN or inf")
    ms = [int(m) for m in batch_sizes]
    if not ms or min(ms) < 1:
        raise ValueError(f"batch_sizes must be ints >= 1; got {batch_sizes!r}")
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2; got {n_draws}")
    g = g.double()
    n = g.shape[0]
    G = g.mean(0)
    G2 = float(G @ G)
    tr = float(((g - G) ** 2).sum() / n)
    norms = g.norm(dim=1)
    gen = generator or torch.Generator().manual_seed(0)
    out = {
        k: []
        for k in (
            "m",
            "norm_mean",
            "norm_mean_se",
            "norm_sq_mean",
            "norm_sq_se",
            "mean_of_norms",
        )
    }
    for m in ms:
        idx = torch.randint(n, (n_draws, m), generator=gen).to(g.device)
        W = torch.zeros(n_draws, n, dtype=g.dtype, device=g.device)
        W.scatter_add_(
            1, idx, torch.full(idx.shape, 1.0 / m, dtype=g.dtype, device=g.device)
        )
        gm = W @ g
        nm = gm.norm(dim=1)
        out["m"].append(m)
        out["norm_mean"].append(float(nm.mean()))
        out["norm_mean_se"].append(float(nm.std() / math.sqrt(n_draws)))
        out["norm_sq_mean"].append(float((nm**2).mean()))
        out["norm_sq_se"].append(float((nm**2).std() / math.sqrt(n_draws)))
        out["mean_of_norms"].append(float((W @ norms).mean()))
    res = {k: np.array(v) for k, v in out.items()}
    res.update(G_norm2=G2, trace_sigma=tr, B_simple=tr / G2)
    return res


def _stacked_mlp_init(M, d_in, hidden, d_out, gen, device, dtype):
    """PyTorch's default nn.Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    for M stacked one-hidden-layer MLPs (weights stored as (M, fan_in, fan_out))."""
    import torch

    def u(shape, fan_in):
        return (
            (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1)
            / math.sqrt(fan_in)
        ).to(device=device, dtype=dtype)

    return [
        u((M, d_in, hidden), d_in),
        u((M, 1, hidden), d_in),
        u((M, hidden, d_out), hidden),
        u((M, 1, d_out), hidden),
    ]


def _stacked_mlp_loss(params, xb, yb):
    """Mean cross-entropy of each of the M stacked MLPs on its own batch, shape (M,)."""
    import torch
    from torch.nn import functional as F

    W1, b1, W2, b2 = params
    out = torch.baddbmm(b2, torch.relu(torch.baddbmm(b1, xb, W1)), W2)
    M, B, C = out.shape
    return (
        F.cross_entropy(out.reshape(M * B, C), yb.reshape(M * B), reduction="none")
        .reshape(M, B)
        .mean(dim=1)
    )


def steps_to_target_vs_batch(
    x,
    y,
    *,
    hidden: int,
    batch_sizes: Sequence[int],
    lrs: Sequence[float],
    target_loss: float,
    max_steps: int,
    n_seeds: int = 1,
    seed: int = 0,
    eval_resolution: float = 0.02,
    show_progress: bool = True,
) -> dict:
    """Steps of SGD needed to reach a training loss, for each batch size, best over lrs.

    The network is a one-hidden-layer ReLU MLP ``x -> hidden -> n_classes`` (the digits
    MLP), trained by plain SGD on minibatches drawn with replacement; the
    ``len(lrs) * n_seeds`` replicas at one batch size are stacked and trained together with
    batched matrix products (``torch.baddbmm``), which on a CPU is several times faster
    than ``vmap`` for a network this small.

    Parameters
    ----------
    x, y : tensors (N, d), (N,)
        Training set (any device); the target is on the full-training-set cross-entropy.
    hidden : int
        Hidden width, >= 1.
    batch_sizes : sequence of int
        Batch sizes B >= 1.
    lrs : sequence of float
        Learning-rate grid, > 0; at each B the best lr (fewest steps) is kept, as in Shallue
        et al. (2019) and McCandlish et al. (2018), who retune at each batch size.
    target_loss : float
        Training loss to reach, nats, > 0.
    max_steps : int
        Step budget per batch size; replicas that have not reached the target by then count
        as "not reached" (inf).
    n_seeds : int
        Independent replicas per lr (initialisation and data stream); replica ``s`` has the
        same initial point and data stream at every lr and batch size.
    seed : int
        Base seed.
    eval_resolution : float
        The full training loss is evaluated every ``max(1, round(eval_resolution * t))``
        steps, so the steps-to-target carry a relative resolution of about this much.
    show_progress : bool
        Progress bar over batch sizes.

    Returns
    -------
    dict
        ``batch_sizes``; ``steps`` (n_B, n_lr, n_seeds) steps to target (nan if diverged;
        inf if not reached within ``max_steps`` or, to save compute, not reached by the time
        the fastest lr of the same seed did: those lrs cannot be the best);
        ``best_steps`` (n_B, n_seeds) min over lrs; ``best_lr``;
        ``steps_median`` (n_B,) median over seeds of ``best_steps``; ``lrs``; ``diverged``
        (n_B, n_lr, n_seeds) booleans.

    Notes
    -----
    Shallue et al. (2019, JMLR 20(112)) measure steps-to-target against batch size with
    retuned metaparameters; McCandlish et al. (2018, Eq. 2.11) predict
    ``S = S_min (1 + B_crit / B)`` (fit it with :func:`fit_steps_vs_batch`). A diverged
    replica (NaN/inf loss) is frozen and recorded as diverged, never raised.
    """
    import torch

    from ..runtime import progress

    if not target_loss > 0:
        raise ValueError(f"target_loss must be > 0 nats; got {target_loss!r}")
    for name, v in (("max_steps", max_steps), ("hidden", hidden), ("n_seeds", n_seeds)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}")
    bs = [int(b) for b in batch_sizes]
    lrs = [float(v) for v in lrs]
    if not bs or min(bs) < 1 or not lrs or min(lrs) <= 0:
        raise ValueError(
            "batch_sizes must be ints >= 1 and lrs floats > 0 (both non-empty)"
        )
    if x.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"x must be (N, d) and y (N,); got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    dev, dt = x.device, x.dtype
    n, d_in = x.shape
    n_cls = int(y.max()) + 1
    n_lr = len(lrs)
    M = n_lr * n_seeds
    lr_vec = torch.tensor(
        [lr for lr in lrs for _ in range(n_seeds)], dtype=dt, device=dev
    )
    steps = np.full((len(bs), n_lr, n_seeds), np.inf)
    div = np.zeros((len(bs), n_lr, n_seeds), dtype=bool)
    it = progress(bs, total=len(bs), desc="batch sweep") if show_progress else bs
    for ib, B in enumerate(it):
        init = [
            _stacked_mlp_init(
                1,
                d_in,
                hidden,
                n_cls,
                torch.Generator().manual_seed(seed * 1000 + s),
                dev,
                dt,
            )
            for s in range(n_seeds)
        ]
        params = [
            torch.cat(
                [init[s][k] for _ in lrs for s in range(n_seeds)]
            ).requires_grad_()
            for k in range(4)
        ]
        gens = torch.Generator().manual_seed(seed * 1000 + 7919 * (ib + 1))
        reached = np.full(M, np.inf)
        dead = torch.zeros(M, dtype=torch.bool, device=dev)
        t, next_eval = 0, 1
        while t < max_steps:
            idx = torch.randint(n, (n_seeds, B), generator=gens).to(dev)
            idx = idx.repeat(n_lr, 1)  # replica s sees the same batches at every lr
            loss = _stacked_mlp_loss(params, x[idx], y[idx])
            grads = torch.autograd.grad(loss.sum(), params)
            with torch.no_grad():
                bad = ~torch.isfinite(loss)
                for g in grads:
                    bad |= ~torch.isfinite(g.reshape(M, -1)).all(dim=1)
                dead |= bad
                keep = (~dead).to(dt).view(M, 1, 1)
                for p, g in zip(params, grads):
                    p.sub_(keep * lr_vec.view(M, 1, 1) * torch.nan_to_num(g))
            t += 1
            if t >= next_eval or t == max_steps:
                with torch.no_grad():
                    full = (
                        _stacked_mlp_loss(params, x.expand(M, n, d_in), y.expand(M, n))
                        .double()
                        .cpu()
                        .numpy()
                    )
                dd = dead.cpu().numpy() | ~np.isfinite(full)
                dead |= torch.as_tensor(dd, device=dev)
                newly = (full <= target_loss) & ~dd & ~np.isfinite(reached)
                reached[newly] = t
                # the best lr of seed s is known once any of its replicas reached the target
                done = (np.isfinite(reached) | dd).reshape(n_lr, n_seeds)
                found = np.isfinite(reached).reshape(n_lr, n_seeds).any(axis=0)
                if np.all(found | done.all(axis=0)):
                    break
                next_eval = t + max(1, int(round(eval_resolution * t)))
        dd = dead.cpu().numpy()
        reached[dd & ~np.isfinite(reached)] = np.nan
        steps[ib] = reached.reshape(n_lr, n_seeds)
        div[ib] = dd.reshape(n_lr, n_seeds)
    with np.errstate(all="ignore"):
        filled = np.where(np.isnan(steps), np.inf, steps)
        best = filled.min(axis=1)
        best_lr = np.array(lrs)[filled.argmin(axis=1)]
        best_lr = np.where(np.isfinite(best), best_lr, np.nan)
        med = np.median(best, axis=1)
    return {
        "batch_sizes": np.array(bs),
        "lrs": np.array(lrs),
        "steps": steps,
        "best_steps": best,
        "best_lr": best_lr,
        "steps_median": med,
        "diverged": div,
    }
