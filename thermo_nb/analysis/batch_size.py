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
    "norm_ratio_slopes",
    "steps_to_target_vs_batch",
    "lr_grid_brackets_optimum",
    "stacked_mlp_state_dict",
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
        ``Sigma`` normalised by n), so that ``E|g_m|^2 = G_norm2 + trace_sigma/m`` exactly,
        ``B_simple`` = their ratio and ``mean_norm`` = ``(1/n) sum_i |g_i|``, the
        expectation of ``mean_of_norms`` at every m.

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
    res.update(
        G_norm2=G2, trace_sigma=tr, B_simple=tr / G2, mean_norm=float(norms.mean())
    )
    return res


def norm_ratio_slopes(curve: dict) -> dict:
    """The seed's per-sample efficiency ``rho_m`` and its local slope against ``m``.

    Parameters
    ----------
    curve : dict
        Output of :func:`batch_gradient_norms` (needs ``m``, ``norm_mean``,
        ``norm_mean_se``, ``mean_norm``, ``G_norm2``, ``trace_sigma``).

    Returns
    -------
    dict of ndarrays
        ``m``, ``rho`` = ``E|g_m| / E|g_i|`` (norm of the batch mean over the mean of the
        per-sample norms) and ``rho_se``; per consecutive pair ``(m_j, m_{j+1})``: ``m_mid``
        (geometric mean), ``slope`` = ``d log rho / d log m`` and ``slope_se``, and
        ``slope_law``, the slope of the root-mean-square law ``sqrt(|G|^2 + tr Sigma/m)``
        over the same pair.

    Notes
    -----
    The seed (sec. "Impacts of gradient accumulation") compares ``|(1/m) sum_i g_i|`` with
    ``(1/m) sum_i |g_i|`` and says the ratio scales like ``1/sqrt(m)``. From
    ``E|g_m|^2 = |G|^2 + tr(Sigma)/m`` (McCandlish et al. 2018, App. A.1) the root mean
    square has slope ``-(1/2) (B_simple/m) / (1 + B_simple/m)``: ``-1/2`` for
    ``m << B_simple`` and 0 for ``m >> B_simple``. The slope's standard error is the delta
    method over the independent draws at the two batch sizes.
    """
    m = np.asarray(curve["m"], float)
    rho = np.asarray(curve["norm_mean"], float) / curve["mean_norm"]
    rho_se = np.asarray(curve["norm_mean_se"], float) / curve["mean_norm"]
    dl = np.diff(np.log(m))
    slope = np.diff(np.log(rho)) / dl
    rel = rho_se / rho
    slope_se = np.sqrt(rel[1:] ** 2 + rel[:-1] ** 2) / dl
    rms = np.sqrt(curve["G_norm2"] + curve["trace_sigma"] / m)
    return {
        "m": m,
        "rho": rho,
        "rho_se": rho_se,
        "m_mid": np.sqrt(m[1:] * m[:-1]),
        "slope": slope,
        "slope_se": slope_se,
        "slope_law": np.diff(np.log(rms)) / dl,
    }


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


def _sweep_one_batch_size(
    x,
    y,
    *,
    B,
    ib,
    lrs,
    hidden,
    target_loss,
    max_steps,
    n_seeds,
    seed,
    eval_resolution,
    best_prev,
    worse_margin,
    keep_params,
):
    """Train ``len(lrs) * n_seeds`` stacked replicas at batch size ``B`` until each seed's
    fastest replica (this pass or ``best_prev``) has reached the target and ``t >= (1 +
    worse_margin) * fastest``, or every replica of the seed is done. Replica ``s`` sees the
    same initial point and minibatch stream at every lr and in every pass."""
    import torch

    dev, dt = x.device, x.dtype
    n, d_in = x.shape
    n_cls = int(y.max()) + 1
    n_lr = len(lrs)
    M = n_lr * n_seeds
    lr_vec = torch.tensor(
        [lr for lr in lrs for _ in range(n_seeds)], dtype=dt, device=dev
    )
    init = [
        _stacked_mlp_init(
            1, d_in, hidden, n_cls, torch.Generator().manual_seed(seed * 1000 + s),
            dev, dt,
        )
        for s in range(n_seeds)
    ]  # fmt: skip
    params = [
        torch.cat([init[s][k] for _ in lrs for s in range(n_seeds)]).requires_grad_()
        for k in range(4)
    ]
    P = sum(p[0].numel() for p in params)
    kept = np.full((M, P), np.nan) if keep_params else None
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
            if keep_params and newly.any():
                sel = torch.as_tensor(np.flatnonzero(newly), device=dev)
                flat = torch.cat(
                    [p.detach()[sel].reshape(len(sel), -1) for p in params], 1
                )
                kept[newly] = flat.double().cpu().numpy()
            # seed s is finished once its fastest replica is known and every other lr
            # has had (1 + worse_margin) times as many steps to reach the target
            r2 = reached.reshape(n_lr, n_seeds)
            done = (np.isfinite(r2) | dd.reshape(n_lr, n_seeds)).all(axis=0)
            fastest = np.minimum(r2.min(axis=0), best_prev)
            waited = np.isfinite(fastest) & (t >= (1.0 + worse_margin) * fastest)
            if np.all(waited | done):
                break
            next_eval = t + max(1, int(round(eval_resolution * t)))
    dd = dead.cpu().numpy()
    reached[dd & ~np.isfinite(reached)] = np.nan
    return (
        reached.reshape(n_lr, n_seeds),
        dd.reshape(n_lr, n_seeds),
        None if kept is None else kept.reshape(n_lr, n_seeds, P),
    )


def lr_grid_brackets_optimum(steps, worse_margin: float) -> np.ndarray:
    """Whether each seed's best learning rate has a diverged or clearly worse one above it.

    Parameters
    ----------
    steps : ndarray (n_lr, n_seeds)
        Steps to target on an increasing lr grid (nan: diverged; inf: not reached within
        the budget or within ``(1 + worse_margin)`` times the fastest).
    worse_margin : float
        "Clearly worse" means more than ``(1 + worse_margin)`` times the best steps.

    Returns
    -------
    ndarray of bool (n_seeds,)
        True where some lr above the best one diverged or is clearly worse; False where
        the best lr is the top of the grid or every lr above it is within the margin (the
        grid, not the dynamics, would then set the optimum). Seeds that never reached the
        target are True (nothing to bracket).

    Examples
    --------
    >>> s = np.array([[40.0, 50.0], [20.0, 21.0], [np.nan, 22.0]])
    >>> lr_grid_brackets_optimum(s, 0.25).tolist()
    [True, False]
    """
    steps = np.asarray(steps, float)
    out = np.ones(steps.shape[1], dtype=bool)
    filled = np.where(np.isnan(steps), np.inf, steps)
    for s in range(steps.shape[1]):
        col = filled[:, s]
        if not np.isfinite(col).any():
            continue
        i = int(np.argmin(col))
        above = steps[i + 1 :, s]
        out[s] = bool(np.any(np.isnan(above) | (above > (1.0 + worse_margin) * col[i])))
    return out


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
    worse_margin: float = 0.0,
    extend_lrs: int = 0,
    keep_params_at_target: bool = False,
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
        Increasing learning-rate grid, > 0; at each B the best lr (fewest steps) is kept,
        as in Shallue et al. (2019) and McCandlish et al. (2018), who retune at each batch
        size.
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
    worse_margin : float
        After a seed's fastest lr reached the target at ``S_best``, the other lrs train on
        until ``(1 + worse_margin) S_best``; one that has not reached it by then is "clearly
        worse" (inf). 0 (default) stops at ``S_best``.
    extend_lrs : int
        At each B, up to this many learning rates are appended above the grid (each the
        previous top times the grid's last ratio) while, for some seed, no lr above the
        best one diverged or is clearly worse (:func:`lr_grid_brackets_optimum`), and
        likewise below the grid while the best lr is its lowest. 0 (default): fixed grid.
    keep_params_at_target : bool
        Keep each replica's flat parameters (``W1 (d, h), b1, W2 (h, c), b2`` in that
        order, float64) at the evaluation where it first reached the target.

    Returns
    -------
    dict
        ``batch_sizes``; ``lrs`` (the union of the grids used, increasing); ``steps``
        (n_B, n_lr, n_seeds) steps to target (nan if diverged; inf if not reached within
        ``max_steps`` or within ``(1 + worse_margin)`` times the fastest lr of the same
        seed: those lrs cannot be the best; inf also where an lr was not run at that B,
        see ``ran``); ``ran`` (n_B, n_lr) booleans; ``best_steps`` (n_B, n_seeds) min
        over lrs; ``best_lr``; ``steps_median`` (n_B,) median over seeds of
        ``best_steps``; ``diverged`` (n_B, n_lr, n_seeds) booleans; ``bracketed`` (n_B,
        n_seeds): the best lr has a diverged or clearly worse lr above it; ``worse_margin``;
        with ``keep_params_at_target`` also ``best_params`` (n_B, n_seeds, P): the
        parameters of the best replica when it reached the target (nan if none did).

    Notes
    -----
    Shallue et al. (2019, JMLR 20(112)) measure steps-to-target against batch size with
    retuned metaparameters; McCandlish et al. (2018, Eq. 2.11) predict
    ``S = S_min (1 + B_crit / B)`` (fit it with :func:`fit_steps_vs_batch`). A diverged
    replica (NaN/inf loss) is frozen and recorded as diverged, never raised.
    """
    from ..runtime import progress

    if not target_loss > 0:
        raise ValueError(f"target_loss must be > 0 nats; got {target_loss!r}")
    for name, v in (("max_steps", max_steps), ("hidden", hidden), ("n_seeds", n_seeds)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}")
    if not isinstance(extend_lrs, int) or extend_lrs < 0:
        raise ValueError(f"extend_lrs must be an int >= 0; got {extend_lrs!r}")
    if not worse_margin >= 0:
        raise ValueError(f"worse_margin must be >= 0; got {worse_margin!r}")
    bs = [int(b) for b in batch_sizes]
    lrs = [float(v) for v in lrs]
    if not bs or min(bs) < 1 or not lrs or min(lrs) <= 0:
        raise ValueError(
            "batch_sizes must be ints >= 1 and lrs floats > 0 (both non-empty)"
        )
    if sorted(set(lrs)) != lrs:
        raise ValueError(f"lrs must be strictly increasing; got {lrs}")
    if x.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"x must be (N, d) and y (N,); got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    up = lrs[-1] / lrs[-2] if len(lrs) > 1 else 3.0
    common = dict(
        hidden=hidden, target_loss=target_loss, max_steps=max_steps, n_seeds=n_seeds,
        seed=seed, eval_resolution=eval_resolution, worse_margin=worse_margin,
        keep_params=keep_params_at_target,
    )  # fmt: skip
    per_b = []
    it = progress(bs, total=len(bs), desc="batch sweep") if show_progress else bs
    for ib, B in enumerate(it):
        grid = {}  # lr -> (steps, dead, params)
        todo = list(lrs)
        n_ext = 0
        while todo:
            best_prev = np.full(n_seeds, np.inf)
            for st, _, _ in grid.values():
                best_prev = np.fmin(best_prev, np.where(np.isnan(st), np.inf, st))
            st, dd, kp = _sweep_one_batch_size(
                x, y, B=B, ib=ib, lrs=todo, best_prev=best_prev, **common
            )
            for i, lr in enumerate(todo):
                grid[lr] = (st[i], dd[i], None if kp is None else kp[i])
            order = sorted(grid)
            steps_b = np.stack([grid[lr][0] for lr in order])
            todo = []
            if n_ext >= extend_lrs:
                break
            filled = np.where(np.isnan(steps_b), np.inf, steps_b)
            best_i = filled.argmin(axis=0)[np.isfinite(filled).any(axis=0)]
            if not lr_grid_brackets_optimum(steps_b, worse_margin).all():
                todo.append(order[-1] * up)
            if best_i.size and (best_i == 0).any():
                todo.insert(0, order[0] / up)
            n_ext += 1 if todo else 0
        per_b.append(grid)
    all_lrs = sorted({lr for g in per_b for lr in g})
    n_lr = len(all_lrs)
    steps = np.full((len(bs), n_lr, n_seeds), np.inf)
    div = np.zeros((len(bs), n_lr, n_seeds), dtype=bool)
    ran = np.zeros((len(bs), n_lr), dtype=bool)
    best_params = None
    for ib, grid in enumerate(per_b):
        for lr, (st, dd, _) in grid.items():
            j = all_lrs.index(lr)
            steps[ib, j], div[ib, j], ran[ib, j] = st, dd, True
    with np.errstate(all="ignore"):
        filled = np.where(np.isnan(steps), np.inf, steps)
        best = filled.min(axis=1)
        best_j = filled.argmin(axis=1)
        best_lr = np.array(all_lrs)[best_j]
        best_lr = np.where(np.isfinite(best), best_lr, np.nan)
        med = np.median(best, axis=1)
    bracketed = np.stack(
        [
            lr_grid_brackets_optimum(
                np.stack([g[lr][0] for lr in sorted(g)]), worse_margin
            )
            for g in per_b
        ]
    )
    if keep_params_at_target:
        P = next(iter(per_b[0].values()))[2].shape[-1]
        best_params = np.full((len(bs), n_seeds, P), np.nan)
        for ib, grid in enumerate(per_b):
            for s in range(n_seeds):
                if np.isfinite(best[ib, s]):
                    best_params[ib, s] = grid[all_lrs[best_j[ib, s]]][2][s]
    out = {
        "batch_sizes": np.array(bs),
        "lrs": np.array(all_lrs),
        "steps": steps,
        "ran": ran,
        "best_steps": best,
        "best_lr": best_lr,
        "steps_median": med,
        "diverged": div,
        "bracketed": bracketed,
        "worse_margin": float(worse_margin),
    }
    if best_params is not None:
        out["best_params"] = best_params
    return out


def stacked_mlp_state_dict(flat, d_in: int, hidden: int, d_out: int) -> dict:
    """A flat parameter vector of the sweep's MLP as a ``thermo_nb.models.MLP`` state dict.

    Parameters
    ----------
    flat : array (P,)
        ``W1 (d_in, hidden), b1 (hidden), W2 (hidden, d_out), b2 (d_out)`` flattened in
        that order (the layout of ``best_params`` of :func:`steps_to_target_vs_batch`).
    d_in, hidden, d_out : int
        Layer widths.

    Returns
    -------
    dict
        ``net.0.weight``, ``net.0.bias``, ``net.2.weight``, ``net.2.bias`` as float32
        tensors (``nn.Linear`` stores weights as (out, in)).
    """
    import torch

    flat = np.asarray(flat, float).ravel()
    sizes = [d_in * hidden, hidden, hidden * d_out, d_out]
    if flat.size != sum(sizes):
        raise ValueError(f"flat has {flat.size} entries; expected {sum(sizes)}")
    W1, b1, W2, b2 = np.split(flat, np.cumsum(sizes)[:-1])
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return {
        "net.0.weight": t(W1.reshape(d_in, hidden).T.copy()),
        "net.0.bias": t(b1),
        "net.2.weight": t(W2.reshape(hidden, d_out).T.copy()),
        "net.2.bias": t(b2),
    }
