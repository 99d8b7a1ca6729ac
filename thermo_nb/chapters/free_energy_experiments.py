"""The experiments of the chapter *SGD as free-energy minimisation*
(``book/free_energy.ipynb``): each function runs or measures one section from the
package's dynamics, training and estimators, so the chapter's cells stay short.

Conventions: ``U`` is the stationary training loss (nats), ``S`` the paper's
k-NN-graph entropy of a window of consecutive iterates (nats, additive constant dropped),
both with standard errors; a learning rate enters a temperature fit only after the
stationarity gate (:func:`stationarity_gate`) passes.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np

from ..dynamics.sphere_toy import UP_MIN_LOSS  # noqa: F401  (used by the chapter)
from .free_energy import GATE_FRACTION, GATE_Z

# ----------------------------------------------------------------------------- fits


def loglog_fit(x, y, min_points: int = 4) -> "dict | None":
    """Least-squares line ``log y = log c + slope log x`` with its OLS 95% interval.

    Returns ``dict(slope, se, low, high, prefactor, n)`` or None when fewer than
    ``min_points`` finite positive pairs exist.
    """
    from ..analysis.fits import fit_growth_law

    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < max(min_points, 4) or np.ptp(np.log(x[ok])) == 0:
        return None
    order = np.argsort(x[ok])
    fit = fit_growth_law(x[ok][order], y[ok][order], "power")
    from scipy import stats

    q = stats.t.ppf(0.975, df=max(int(ok.sum()) - 2, 1))
    se = (fit.b_ci[1] - fit.b_ci[0]) / (2 * q)
    return dict(
        slope=fit.b,
        se=se,
        low=fit.b_ci[0],
        high=fit.b_ci[1],
        prefactor=math.exp(fit.a),
        n=int(ok.sum()),
    )


def fit_text(fit: "dict | None", digits: int = 3) -> str:
    """``"slope ± s.e."`` of a :func:`loglog_fit` result, or ``"no fit"``."""
    if fit is None:
        return "no fit (fewer than 4 usable points)"
    return f"{fit['slope']:.{digits}g} ± {fit['se']:.2g}"


def lr_batch_fit(rows) -> "dict | None":
    """Fit ``log T = a + k log eta - m log B`` to rows ``(eta, B, T)``; the ratio
    ``r = m / k`` is 1 when T depends on eta/B only (delta-method s.e.)."""
    rows = [(e, b, t) for e, b, t in rows if e > 0 and t > 0 and np.isfinite(t)]
    if len({b for _, b, _ in rows}) < 2 or len(rows) < 5:
        return None
    eta, bs, temp = (np.array(v, float) for v in zip(*rows))
    X = np.column_stack([np.ones(eta.size), np.log(eta), -np.log(bs)])
    y = np.log(temp)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = max(eta.size - 3, 1)
    cov = (resid @ resid / dof) * np.linalg.inv(X.T @ X)
    k, m = coef[1], coef[2]
    grad = np.array([0.0, -m / k**2, 1.0 / k])
    return dict(
        k=float(k),
        m=float(m),
        ratio=float(m / k),
        ratio_se=float(math.sqrt(max(grad @ cov @ grad, 0.0))),
        n=int(eta.size),
    )


# ----------------------------------------------------------------------------- gate


def stationarity_gate(first, second, se_first, se_second):
    r"""The chapter's stationarity gate for a quantity measured at every learning rate.

    Parameters
    ----------
    first, second : arrays (L,)
        The quantity (U or S) in the first and the second half of the averaging window.
    se_first, se_second : arrays (L,)
        Their standard errors.

    Returns
    -------
    passed : bool array (L,)
        ``|second - first| <= max(GATE_Z * se_drift, GATE_FRACTION * gap)`` where
        ``se_drift = sqrt(se1^2 + se2^2)`` and ``gap`` is the mean distance of
        ``second`` to its neighbours on the grid (3 s.e. and a quarter of the gap): a
        drift that is either insignificant or too small to reorder the points.
    drift : array (L,)
    """
    a, b = np.asarray(first, float), np.asarray(second, float)
    se = np.hypot(np.asarray(se_first, float), np.asarray(se_second, float))
    drift = b - a
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a point without neighbours
        step = np.abs(np.diff(b))
        gap = np.full(b.size, np.nan)
        if b.size > 1:
            left = np.r_[np.nan, step]
            right = np.r_[step, np.nan]
            gap = np.nanmean(np.vstack([left, right]), axis=0)
        bound = np.fmax(GATE_Z * se, GATE_FRACTION * gap)
        passed = np.isfinite(drift) & (np.abs(drift) <= bound)
    return passed, drift


def temperature_analysis(lrs, U, S, se_U, gate, U_uniform, half_width=0.3) -> dict:
    """The paper's temperature inference on the gated points of one data set.

    Points enter when they pass the gate and lie in the chaotic-equilibrium range,
    ``U <= U_low + (U_uniform - U_low) / 2`` (below the random-walk regime whose loss is
    that of uniformly random weights).  The slack is ``2 sqrt(2)`` times the median s.e.
    of U; T is fitted by ``T = b eta^k`` without the end points (the paper).

    Returns
    -------
    dict
        ``lrs, U, S, t_low, t_high, temperature, consistent`` of the included points,
        ``included`` (mask over the grid), ``slack``, ``fit`` (:func:`loglog_fit` of T
        against eta, or None) and ``hull`` = (consistent, total).
    """
    from ..estimators.temperature import infer_temperature

    lrs, U, S = (np.asarray(v, float) for v in (lrs, U, S))
    se_U = np.asarray(se_U, float)
    finite = np.isfinite(U) & np.isfinite(S) & np.asarray(gate, bool)
    u_low = np.nanmin(U[finite]) if finite.any() else np.nan
    included = finite & (U <= u_low + 0.5 * (U_uniform - u_low))
    out = dict(included=included, fit=None, hull=None, slack=np.nan)
    if included.sum() < 3:
        return out
    slack = 2 * math.sqrt(2) * float(np.nanmedian(se_U[included]))
    res = infer_temperature(
        lrs[included], U[included], S[included], slack=slack, half_width=half_width
    )
    out.update(res, slack=slack)
    n = res["lrs"].size
    out["hull"] = (int(res["consistent"].sum()), n)
    inner = np.zeros(n, bool)
    inner[1:-1] = True
    ok = inner & res["consistent"]
    out["fit"] = loglog_fit(res["lrs"][ok], res["temperature"][ok])
    return out


# ----------------------------------------------------------------------------- toy


def toy_lr_grid(n: int) -> np.ndarray:
    """The paper's 80 learning rates when ``n == 80``, else n log-spaced in [1e-3, 10]."""
    from ..dynamics.sphere_toy import paper_lr_grid

    return paper_lr_grid() if n == 80 else np.logspace(-3, 1, n)


def run_toy(
    kind: str,
    lrs,
    n_steps: int,
    n_replicas: int,
    window: int,
    window_replicas: int,
    entropy_k: int,
    batch_size: int = 1,
    momentum: float = 0.0,
    seed: int = 0,
    n_records: int = 24,
) -> dict:
    """One toy ensemble: the grid x replicas, U and S at half time and at the end, SNR
    and gradient norms along the run (medians over replicas).

    Returns a dict of arrays: ``lrs``, ``steps``; ``loss_mean``, ``loss_se``,
    ``snr_median``, ``full_grad_median``, ``stoch_grad_median`` (K, L) at the record
    steps; ``S_half``, ``S_end``, ``S_half_se``, ``S_end_se`` (L,) from the windows;
    ``U_half``, ``U_end`` and s.e.; ``S_ensemble`` (L,) the graph entropy of all
    replicas' final positions (a stationary-distribution sample); ``loss_min_final``.
    """
    from ..dynamics.sphere_toy import simulate_sphere_toy, sphere_toy_points
    from ..estimators.temperature import window_graph_entropies

    lrs = np.asarray(lrs, float)
    half = n_steps // 2
    rec = np.unique(
        np.r_[np.geomspace(1, n_steps, n_records).astype(int), half, n_steps]
    )
    out = simulate_sphere_toy(
        sphere_toy_points(kind),
        lrs,
        n_steps,
        n_replicas=n_replicas,
        batch_size=batch_size,
        momentum=momentum,
        record_steps=rec,
        seed=seed,
        window=window,
        window_replicas=window_replicas,
    )
    k_half, k_end = int(np.searchsorted(rec, half)), len(rec) - 1
    ent = window_graph_entropies(
        out["windows"][[k_half, k_end]], k=min(entropy_k, window), intrinsic_dim=2
    )  # (2, L, Rw)
    loss = out["loss"]  # (K, L, R)
    rw = window_replicas
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN SNR after convergence
        snr_median = np.nanmedian(
            np.where(np.isfinite(out["snr"]), out["snr"], np.nan), -1
        )
        ent_mean, ent_se = ent.mean(-1), ent.std(-1, ddof=1) / math.sqrt(rw)
    res = dict(
        kind=kind,
        lrs=lrs,
        steps=out["steps"],
        batch_size=batch_size,
        momentum=momentum,
        loss_mean=loss.mean(-1),
        loss_se=loss.std(-1, ddof=1) / math.sqrt(loss.shape[-1]),
        snr_median=snr_median,
        full_grad_median=np.median(out["full_grad_norm"], -1),
        stoch_grad_median=np.median(out["stoch_grad_mean_norm"], -1),
        U_half=loss[k_half].mean(-1),
        U_end=loss[k_end].mean(-1),
        U_half_se=loss[k_half].std(-1, ddof=1) / math.sqrt(loss.shape[-1]),
        U_end_se=loss[k_end].std(-1, ddof=1) / math.sqrt(loss.shape[-1]),
        S_half=ent_mean[0],
        S_end=ent_mean[1],
        S_half_se=ent_se[0],
        S_end_se=ent_se[1],
        S_ensemble=window_graph_entropies(
            out["x"][k_end], k=min(entropy_k, n_replicas), intrinsic_dim=2
        ),
        loss_max_final=loss[k_end].max(-1),
        snr_traj=out["snr"][:, :, 0],
        full_grad_traj=out["full_grad_norm"][:, :, 0],
        stoch_grad_traj=out["stoch_grad_mean_norm"][:, :, 0],
    )
    return res


def toy_stationary(res: dict) -> dict:
    """Gate, U, S and their s.e. of a :func:`run_toy` result (finite entropies only)."""
    with np.errstate(invalid="ignore"):
        S1 = np.where(np.isfinite(res["S_half"]), res["S_half"], np.nan)
        S2 = np.where(np.isfinite(res["S_end"]), res["S_end"], np.nan)
    gate_u, drift_u = stationarity_gate(
        res["U_half"], res["U_end"], res["U_half_se"], res["U_end_se"]
    )
    gate_s, drift_s = stationarity_gate(S1, S2, res["S_half_se"], res["S_end_se"])
    return dict(
        lrs=res["lrs"],
        U=res["U_end"],
        se_U=res["U_end_se"],
        S=S2,
        se_S=res["S_end_se"],
        gate=gate_u & gate_s,
        drift_U=drift_u,
        drift_S=drift_s,
    )


def toy_snr_vs_lr(res: dict, stat: dict, mask) -> "dict | None":
    """Log-log slope of the final SNR (median over replicas) against eta."""
    return loglog_fit(res["lrs"][mask], res["snr_median"][-1][mask])


def toy_op_trajectory_fits(res: dict, max_lr: float = 0.3):
    """OP toy, learning rates <= ``max_lr``: slope of log SNR and of log E|g_i| against
    log |g| along replica 0's trajectory, where |g| > 1e-100 (before underflow), after
    the first 5% of the steps.  Returns (snr_fit, grad_fit, decades)."""
    steps = res["steps"]
    late = steps >= 0.05 * steps[-1]
    g, gi, snr = [], [], []
    for j, eta in enumerate(res["lrs"]):
        if eta > max_lr:
            continue
        ok = late & (res["full_grad_traj"][:, j] > 1e-100)
        g.append(res["full_grad_traj"][ok, j])
        gi.append(res["stoch_grad_traj"][ok, j])
        snr.append(res["snr_traj"][ok, j])
    if not g:
        return None, None, 0.0
    g, gi, snr = (np.concatenate(v) for v in (g, gi, snr))
    decades = float(np.log10(g.max() / g.min())) if g.size > 1 else 0.0
    if decades < 1:
        return None, None, decades
    return loglog_fit(g, snr), loglog_fit(g, gi), decades


# ----------------------------------------------------------------------------- networks


def load_network_data(cfg):
    """Digits (quick) or CIFAR-10 from ``data_root`` (full) as TensorSplits."""
    if cfg.profile == "full":
        from ..data.cifar import load_cifar10

        return load_cifar10(cfg.data_root, device=cfg.torch_device)
    from ..data.images import load_digits_tensors

    return load_digits_tensors(device=cfg.torch_device, seed=cfg.seed)


def make_model(cfg, kind: str, data):
    """The UP / OP scale-invariant network of the profile: MLP-SI on digits (UP: one
    hidden layer of ``up_width``; OP: two of ``op_width``) or ConvNet-SI of width c on
    CIFAR-10 (full).  Built once under the chapter seed: every learning rate starts from
    this same point."""
    import torch

    from ..models.scale_invariant import ConvNetSI, ScaleInvariantMLP

    width = cfg.up_width if kind == "up" else cfg.op_width
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if cfg.profile == "full":
            net = ConvNetSI(width, n_classes=data.n_classes)
        else:
            depth = 1 if kind == "up" else 2
            net = ScaleInvariantMLP(data.in_dim, width, data.n_classes, depth=depth)
    return net.to(cfg.torch_device)


def log_steps(n_steps: int, n_log: int) -> np.ndarray:
    """``n_log`` log-spaced log points from 10 (or 1) to ``n_steps``."""
    start = 10 if n_steps > 100 else 1
    return np.unique(np.geomspace(start, n_steps, n_log).astype(int))


def run_network(cfg, kind: str, batch_size=None, momentum: float = 0.0, lrs=None):
    """Train the UP or OP network at every learning rate (groups of ``lr_chunk``
    replicas, the same initial point for all) and record loss, entropy, SNR and gradient
    norms at the log points; resumable through ``cfg.cache``.

    Returns the concatenated :func:`thermo_nb.training.sphere.record_sphere_run` output
    plus ``lrs``, ``batch_size``, ``momentum`` and the uniform-sphere references
    ``U_uniform`` (mean loss of 16 random directions) and ``S_uniform`` (the estimator on
    ``window`` independent uniform points).
    """
    import torch

    from ..estimators.knn import knn_graph_entropy
    from ..training.sphere import SphereSGD, record_sphere_run

    data = load_network_data(cfg)
    if lrs is None:
        lrs = cfg.net_lrs if kind == "up" else cfg.op_lrs
    lrs = sorted(float(v) for v in lrs)
    b = int(cfg.batch_size if batch_size is None else batch_size)
    init_net = make_model(cfg, kind, data)
    model_fn = lambda: copy.deepcopy(init_net)  # noqa: E731
    chunk = cfg.lr_chunk or len(lrs)
    n_steps = cfg.up_n_steps if kind == "up" else cfg.op_n_steps
    steps = log_steps(n_steps, cfg.n_log)
    parts = []
    for g0 in range(0, len(lrs), chunk):
        group = lrs[g0 : g0 + chunk]
        seeds = [cfg.seed * 1000 + i for i in range(g0, g0 + len(group))]
        tr = SphereSGD(
            model_fn,
            len(group),
            data.x_train,
            data.y_train,
            lr=group,
            batch_size=b,
            momentum=momentum,
            seeds=seeds,
            device=cfg.torch_device,
        )
        key = dict(
            kind=kind,
            lrs=group,
            seeds=seeds,
            batch_size=b,
            momentum=momentum,
            profile=cfg.profile,
            width=cfg.up_width if kind == "up" else cfg.op_width,
            seed=cfg.seed,
            data_root=cfg.data_root,
        )
        parts.append(
            record_sphere_run(
                tr,
                n_steps,
                steps,
                window=cfg.window,
                entropy_k=min(cfg.entropy_k, cfg.window),
                snr_batches=cfg.snr_batches,
                seed=cfg.seed,
                full_chunk=1024 if cfg.profile == "full" else None,
                cache=cfg.cache,
                name=f"fe_{kind}_B{b}_mu{momentum:g}_g{g0}",
                params=key,
                desc=f"{kind.upper()} net, B={b}, lr {g0 + 1}-{g0 + len(group)}",
            )
        )
    out = {
        k: np.concatenate([p[k] for p in parts], axis=1)
        for k in parts[0]
        if isinstance(parts[0][k], np.ndarray) and parts[0][k].ndim == 2
    }
    out.update(
        steps=parts[0]["steps"],
        diverged=np.concatenate([p["diverged"] for p in parts]),
        dim=parts[0]["dim"],
        lrs=np.array(lrs),
        batch_size=b,
        momentum=momentum,
    )
    # uniform-sphere references: random directions (loss) and i.i.d. uniform points (S)
    gen = torch.Generator().manual_seed(cfg.seed + 77)
    ref = SphereSGD(
        model_fn, 16, data.x_train, data.y_train, lr=1.0, batch_size=b,
        device=cfg.torch_device,
    )  # fmt: skip
    w = torch.randn(16, ref.spec.n_params, generator=gen)
    ref.set_flat_params(w / w.norm(dim=1, keepdim=True))
    out["U_uniform"] = float(ref.full_loss().double().mean())
    u = torch.randn(cfg.window, out["dim"], generator=gen, dtype=torch.float64)
    u /= u.norm(dim=1, keepdim=True)
    out["S_uniform"] = knn_graph_entropy(
        u, k=min(cfg.entropy_k, cfg.window), intrinsic_dim=max(out["dim"] - 1, 2)
    )
    return out


def network_stationary(res: dict, n_avg: int) -> dict:
    """U and S (means over the last ``n_avg`` log points), their s.e. (spread of those
    points), and the gate (first vs second half of them); diverged runs are NaN."""
    n_avg = min(n_avg, res["loss"].shape[0])
    h = n_avg // 2
    last = slice(-n_avg, None)

    def stats(x):
        w = x[last]
        a, b = w[:h], w[h:]
        se = lambda v: v.std(0, ddof=1) / math.sqrt(v.shape[0])  # noqa: E731
        return w.mean(0), se(w), a.mean(0), b.mean(0), se(a), se(b)

    with np.errstate(invalid="ignore"):
        U, se_U, U1, U2, seU1, seU2 = stats(res["loss"])
        S, se_S, S1, S2, seS1, seS2 = stats(res["entropy"])
    gate_u, drift_u = stationarity_gate(U1, U2, seU1, seU2)
    gate_s, drift_s = stationarity_gate(S1, S2, seS1, seS2)
    bad = res["diverged"] | ~np.isfinite(S)
    U, S = np.where(bad, np.nan, U), np.where(bad, np.nan, S)
    return dict(
        lrs=res["lrs"],
        U=U,
        se_U=se_U,
        S=S,
        se_S=se_S,
        gate=gate_u & gate_s & ~bad,
        drift_U=drift_u,
        drift_S=drift_s,
        snr=np.nanmean(res["snr"][last], 0),
        accuracy=res["accuracy"][-1],
    )


def op_trajectory(res: dict, stat: dict, n_small: int = 2, lag: "int | None" = None):
    """OP network at its ``n_small`` smallest learning rates: the trajectory temperature
    ``T(t) = dU/dS`` (centred differences over ``lag`` log points) with its log-log
    slope in t, and the gradient-norm power laws along the trajectory after the first
    1/30 of the steps.  Returns dict(T (K, n_small), traj_fit, snr_fit, grad_fit,
    decades, gate_failed)."""
    from ..estimators.temperature import trajectory_temperature

    steps = res["steps"]
    lag = lag or max(1, len(steps) // 48)
    idx = np.argsort(res["lrs"])[:n_small]
    T = np.stack(
        [
            trajectory_temperature(res["loss"][:, j], res["entropy"][:, j], lag)
            for j in idx
        ],
        axis=1,
    )
    tt = np.repeat(steps[:, None], len(idx), axis=1)
    traj_fit = loglog_fit(tt, T)
    late = steps >= steps[-1] / 30
    g = res["full_grad_norm"][late][:, idx]
    ok = np.isfinite(g) & (g > 0)
    decades = float(np.log10(g[ok].max() / g[ok].min())) if ok.sum() > 1 else 0.0
    snr_fit = grad_fit = None
    if decades >= 1:
        snr_fit = loglog_fit(g, res["snr"][late][:, idx])
        grad_fit = loglog_fit(g, res["stoch_grad_mean_norm"][late][:, idx])
    return dict(
        T=T,
        lrs=res["lrs"][idx],
        traj_fit=traj_fit,
        snr_fit=snr_fit,
        grad_fit=grad_fit,
        decades=decades,
        gate_failed=bool(not stat["gate"][idx[0]]),
    )


# ----------------------------------------------------------------------------- sections

TOY_UNIFORM_LOSS = 1.0 / 3.0
"""Mean toy loss over uniformly random x on the sphere: E (x . d)^2 = 1/3 for |d| = 1."""


def run_toy_all(cfg) -> dict:
    """Every toy ensemble of the chapter (cached): UP, OP, UP at each batch size of
    ``toy_batch_sizes`` and UP with ``momentum``."""
    lrs = toy_lr_grid(cfg.toy_n_lrs)
    names = ("toy_n_steps", "toy_n_lrs", "toy_replicas", "toy_window")
    key = {k: cfg[k] for k in names + ("toy_window_replicas", "entropy_k", "seed")}
    args = (lrs, cfg.toy_n_steps, cfg.toy_replicas, cfg.toy_window)
    args += (cfg.toy_window_replicas, cfg.entropy_k)

    def one(name, kind, b=1, mom=0.0, stream=0):
        return cfg.cache.get_or_compute(
            f"toy_{name}",
            dict(key, b=b, mom=mom),
            lambda: run_toy(
                kind, *args, batch_size=b, momentum=mom, seed=cfg.seed * 1000 + stream
            ),
        )

    out = {"up": one("up", "up"), "op": one("op", "op", stream=1)}
    out["batch"] = {
        int(b): out["up"] if b == 1 else one(f"up_B{b}", "up", b=int(b), stream=10 + b)
        for b in cfg.toy_batch_sizes
    }
    if cfg.momentum > 0:
        out["momentum"] = one("up_mom", "up", mom=cfg.momentum, stream=2)
    return out


def analyse_toy(res: dict) -> tuple[dict, dict]:
    """(:func:`toy_stationary`, :func:`temperature_analysis`) of one toy ensemble."""
    st = toy_stationary(res)
    ta = temperature_analysis(
        st["lrs"], st["U"], st["S"], st["se_U"], st["gate"], TOY_UNIFORM_LOSS
    )
    return st, ta


def analyse_toy_ensemble(res: dict, st: dict) -> dict:
    """Temperature analysis of the toy with the *ensemble* entropy (all replicas at the
    end: a sample of the stationary distribution) instead of the window entropy, on the
    points that passed the gate."""
    return temperature_analysis(
        st["lrs"], st["U"], res["S_ensemble"], st["se_U"], st["gate"], TOY_UNIFORM_LOSS
    )


def toy_op_collapsing(res: dict) -> bool:
    """OP toy, smallest quarter of the grid: every learning rate has its mean loss below
    1e-12 or still falling by more than 10x between half time and the end."""
    small = res["lrs"] <= np.quantile(res["lrs"], 0.25)
    end, half = res["U_end"][small], res["U_half"][small]
    return bool(np.all((end < 1e-12) | (end < half / 10)))


def analyse_network(res: dict, n_avg: int) -> tuple[dict, dict]:
    """(:func:`network_stationary`, :func:`temperature_analysis`) of one network run."""
    st = network_stationary(res, n_avg)
    ta = temperature_analysis(
        st["lrs"], st["U"], st["S"], st["se_U"], st["gate"], res["U_uniform"]
    )
    return st, ta


def batch_rows(analyses: dict) -> list:
    """``(eta, B, T)`` of the consistent interior points of each batch size's analysis
    (the input of :func:`lr_batch_fit`)."""
    rows = []
    for b, a in analyses.items():
        if a.get("temperature") is None:
            continue
        inner = np.zeros(a["lrs"].size, bool)
        inner[1:-1] = True
        ok = inner & a["consistent"]
        rows += [(e, b, t) for e, t in zip(a["lrs"][ok], a["temperature"][ok])]
    return rows


def summary_table(stat: dict, analysis: dict):
    """One row per learning rate: U, S (with s.e.), gate, and the inferred T interval."""
    import pandas as pd

    df = pd.DataFrame(
        {
            "η": stat["lrs"],
            "U": stat["U"],
            "s.e.(U)": stat["se_U"],
            "S": stat["S"],
            "s.e.(S)": stat["se_S"],
            "stationary": stat["gate"],
            "in T fit": analysis["included"],
        }
    )
    for col in ("t_low", "temperature", "t_high"):
        df[col] = np.nan
    if analysis.get("temperature") is not None:
        rows = np.flatnonzero(analysis["included"])
        for col in ("t_low", "temperature", "t_high"):
            df.loc[rows, col] = analysis[col]
    return df.rename(columns={"t_low": "T low", "temperature": "T", "t_high": "T high"})


def lr_over_batch(cfg, toy: dict, up_analysis: dict):
    """Section 3: temperature analyses of the UP toy at every ``toy_batch_sizes`` and of
    the UP network at ``batch_size`` plus ``net_batch_sizes``, and the fits
    :func:`lr_batch_fit` of both.  Returns ``(toy_analyses, net_analyses, fits)``."""
    toy_b = {b: analyse_toy(r)[1] for b, r in toy["batch"].items()}
    net_b = {cfg.batch_size: up_analysis}
    for b in cfg.net_batch_sizes:
        res = run_network(cfg, "up", batch_size=int(b))
        net_b[int(b)] = analyse_network(res, cfg.n_avg)[1]
    fits = {
        "toy": lr_batch_fit(batch_rows(toy_b)),
        "network": lr_batch_fit(batch_rows(net_b)),
    }
    return toy_b, net_b, fits


def lr_batch_text(fits: dict) -> str:
    """One line per data set: ``m/k ± s.e., k`` of :func:`lr_batch_fit` (or no fit)."""
    return "\n".join(
        f"{name}: m/k = {f['ratio']:.3g} ± {f['ratio_se']:.2g}, k = {f['k']:.3g}"
        if f
        else f"{name}: no fit"
        for name, f in fits.items()
    )
