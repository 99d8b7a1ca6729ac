"""Compute-optimal scaling and its fit.

The closed forms and the fit that the chapter ``book/dimensional_analysis.ipynb`` calls: the
Chinchilla parametric loss ``L(N, D) = E + A/N^alpha + B/D^beta`` with the published
constant sets (Hoffmann et al. 2022, rounded and unrounded; Besiroglu et al. 2024 refit),
its closed-form compute-optimal allocation ``N_opt(C)``, ``D_opt(C)`` under ``C = k N D``,
and the Huber-loss fit (delta = 1e-3, L-BFGS from a grid of starts) with the Huber loss
summed or averaged.

Every constant carries its source in :data:`CHINCHILLA_CONSTANTS`. The energy floor of
training lives in :mod:`thermo_nb.theory.energy`, the batch-size law in
:mod:`thermo_nb.analysis.batch_size`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .._validation import positive_array

__all__ = [
    "CHINCHILLA_CONSTANTS",
    "CHINCHILLA_TABLE3",
    "ChinchillaConstants",
    "chinchilla_loss",
    "compute_optimal_allocation",
    "compute_optimal_exponents",
    "huber_loss",
    "huber_start_grid",
    "fit_chinchilla_huber",
    "bootstrap_chinchilla_huber",
    "TIGHT_LBFGSB",
    "synthetic_chinchilla_data",
    "load_epoch_chinchilla_csv",
]


# ----------------------------------------------------------------------------- constants


@dataclass(frozen=True)
class ChinchillaConstants:
    """Constants of ``L(N, D) = E + A / N**alpha + B / D**beta`` (loss in nats per token)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def as_dict(self) -> dict:
        return {
            "E": self.E,
            "A": self.A,
            "B": self.B,
            "alpha": self.alpha,
            "beta": self.beta,
        }


CHINCHILLA_CONSTANTS: dict[str, ChinchillaConstants] = {
    "hoffmann_rounded": ChinchillaConstants(
        E=1.69,
        A=406.4,
        B=410.7,
        alpha=0.34,
        beta=0.28,
        source="Hoffmann et al. 2022 (arXiv 2203.15556), Eq. 10 / Approach 3, as printed",
    ),
    "hoffmann_unrounded": ChinchillaConstants(
        E=math.exp(0.5267228),
        A=math.exp(6.0073404),
        B=math.exp(6.0179186),
        alpha=0.33917084,
        beta=0.2849083,
        source="Hoffmann et al. 2022, unrounded values of the TeX source as given in log form "
        "in epoch-research/analyzing-chinchilla, data_analysis.ipynb (true_params)",
    ),
    "besiroglu_refit": ChinchillaConstants(
        E=math.exp(0.59711196),
        A=math.exp(6.17795598),
        B=math.exp(7.64273236),
        alpha=0.34781303,
        beta=0.36585412,
        source="Besiroglu et al. 2024 (arXiv 2404.10102), Huber-likelihood refit on the "
        "240 points extracted from Hoffmann's Fig. 4 (notebook cell 25, log form)",
    ),
}
"""The three published constant sets of the Chinchilla parametric loss."""

CHINCHILLA_TABLE3 = {
    # Hoffmann et al. 2022, Table 3 (Approach-1 projections): parameters, FLOPs, tokens
    "parameters": np.array([400e6, 1e9, 10e9, 67e9, 175e9, 280e9, 1e12]),
    "flops": np.array([1.92e19, 1.21e20, 1.23e22, 5.76e23, 3.85e24, 9.90e24, 1.27e26]),
    "tokens": np.array([8.0e9, 20.2e9, 205.1e9, 1.5e12, 3.7e12, 5.9e12, 21.2e12]),
    "source": "Hoffmann et al. 2022 (arXiv 2203.15556), Table 3",
}


def _constants(params) -> ChinchillaConstants:
    if isinstance(params, ChinchillaConstants):
        return params
    if isinstance(params, str):
        if params not in CHINCHILLA_CONSTANTS:
            raise ValueError(
                f"params must be one of {sorted(CHINCHILLA_CONSTANTS)} or a "
                f"mapping with E, A, B, alpha, beta; got {params!r}"
            )
        return CHINCHILLA_CONSTANTS[params]
    if isinstance(params, Mapping):
        missing = {"E", "A", "B", "alpha", "beta"} - set(params)
        if missing:
            raise ValueError(f"params is missing {sorted(missing)}")
        return ChinchillaConstants(
            **{k: float(params[k]) for k in ("E", "A", "B", "alpha", "beta")}
        )
    raise ValueError(
        f"params must be a name, a mapping or ChinchillaConstants; got {params!r}"
    )


# ----------------------------------------------------------------------------- the law


def chinchilla_loss(N, D, params="hoffmann_unrounded"):
    """Parametric loss of Hoffmann et al. (2022), Eq. 2.

    Parameters
    ----------
    N : array_like
        Parameters (all of them, embeddings included), > 0.
    D : array_like
        Training tokens, > 0.
    params : str, mapping or ChinchillaConstants
        A key of :data:`CHINCHILLA_CONSTANTS` or ``{"E", "A", "B", "alpha", "beta"}``.

    Returns
    -------
    ndarray
        Predicted loss in nats per token.

    Notes
    -----
    ``L(N, D) = E + A / N**alpha + B / D**beta``  (Hoffmann et al. 2022, Eq. 2 and App. D.2).

    Examples
    --------
    >>> round(float(chinchilla_loss(70e9, 1.4e12, "hoffmann_rounded")), 3)
    1.937
    """
    c = _constants(params)
    N, D = positive_array("N", N), positive_array("D", D)
    return c.E + c.A / N**c.alpha + c.B / D**c.beta


def compute_optimal_exponents(params="hoffmann_unrounded") -> dict:
    """Exponents and prefactor of the compute-optimal allocation.

    Returns
    -------
    dict
        ``a = beta/(alpha+beta)`` (N_opt ~ C^a), ``b = alpha/(alpha+beta)`` (D_opt ~ C^b),
        ``G = (alpha A / (beta B))**(1/(alpha+beta))`` and the loss exponent
        ``alpha beta / (alpha + beta)`` of ``L_opt - E ~ C^-(alpha beta/(alpha+beta))``.

    Notes
    -----
    Hoffmann et al. 2022, Eq. 4.
    """
    c = _constants(params)
    s = c.alpha + c.beta
    return {
        "a": c.beta / s,
        "b": c.alpha / s,
        "G": (c.alpha * c.A / (c.beta * c.B)) ** (1.0 / s),
        "loss_exponent": c.alpha * c.beta / s,
    }


def compute_optimal_allocation(C, params="hoffmann_unrounded", k: float = 6.0) -> dict:
    """Closed-form compute-optimal model size and data size under ``C = k N D``.

    Parameters
    ----------
    C : array_like
        Compute budget in FLOP, > 0.
    params : str, mapping or ChinchillaConstants
        Constants of the parametric loss (see :func:`chinchilla_loss`).
    k : float
        FLOP per token per parameter (6 for forward + backward of dense layers), > 0.

    Returns
    -------
    dict of ndarrays
        ``N_opt`` (parameters), ``D_opt`` (tokens), ``tokens_per_parameter`` = D_opt/N_opt,
        ``loss_opt`` (nats per token) = L(N_opt, D_opt).

    Notes
    -----
    Minimising ``L(N, D)`` subject to ``k N D = C`` gives the first-order condition
    ``alpha A / N**alpha = beta B / D**beta`` and (Hoffmann et al. 2022, Eq. 4)

    ``N_opt = G (C/k)**a``,  ``D_opt = G**-1 (C/k)**b``,
    ``G = (alpha A / (beta B))**(1/(alpha+beta))``, ``a = beta/(alpha+beta)``,
    ``b = alpha/(alpha+beta)``.

    Examples
    --------
    >>> out = compute_optimal_allocation(5.76e23, "hoffmann_unrounded")
    >>> round(float(out["N_opt"]) / 1e9, 1)
    40.4
    """
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k > 0):
        raise ValueError(
            f"k must be a finite number > 0 (FLOP/token/parameter); got {k!r}"
        )
    C = positive_array("C", C)
    ex = compute_optimal_exponents(params)
    N = ex["G"] * (C / k) ** ex["a"]
    D = (C / k) ** ex["b"] / ex["G"]
    return {
        "N_opt": N,
        "D_opt": D,
        "tokens_per_parameter": D / N,
        "loss_opt": chinchilla_loss(N, D, params),
    }


# ----------------------------------------------------------------------------- the fit


def huber_loss(r, delta: float = 1e-3):
    """Huber loss ``r**2/2`` for ``|r| <= delta``, ``delta (|r| - delta/2)`` beyond."""
    r = np.asarray(r, dtype=float)
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_start_grid(kind: str = "hoffmann") -> np.ndarray:
    """Starting points ``(a, b, e, alpha, beta)`` of the L-BFGS fits.

    Parameters
    ----------
    kind : {"hoffmann", "coarse"}
        ``"hoffmann"``: the grid of Hoffmann et al. (2022, App. D.2): alpha, beta in
        {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} (4,500 starts).
        ``"coarse"``: every other value of each axis (alpha, beta in {0, 1, 2}, e in {-1, 0, 1},
        a, b in {0, 10, 20}; 243 starts), for the quick profile.

    Returns
    -------
    ndarray, shape (n_starts, 5)
    """
    if kind == "hoffmann":
        ab, e, AB = (
            np.arange(0, 2.01, 0.5),
            np.arange(-1, 1.01, 0.5),
            np.arange(0, 25.1, 5),
        )
    elif kind == "coarse":
        ab, e, AB = (
            np.array([0.0, 1.0, 2.0]),
            np.array([-1.0, 0.0, 1.0]),
            np.array([0.0, 10.0, 20.0]),
        )
    else:
        raise ValueError(f"kind must be 'hoffmann' or 'coarse'; got {kind!r}")
    return np.array(
        [
            (a, b, ee, al, be)
            for a, b, ee, al, be in itertools.product(AB, AB, e, ab, ab)
        ],
        dtype=float,
    )


def _huber_objective(theta, logN, logD, logL, delta, mean):
    a, b, e, alpha, beta = theta
    t = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    m = t.max(axis=0)
    w = np.exp(t - m)
    s = w.sum(axis=0)
    r = m + np.log(s) - logL
    w = w / s
    h = huber_loss(r, delta)
    dh = np.clip(r, -delta, delta)
    grad = np.array(
        [
            np.sum(dh * w[0]),
            np.sum(dh * w[1]),
            np.sum(dh * w[2]),
            -np.sum(dh * w[0] * logN),
            -np.sum(dh * w[1] * logD),
        ]
    )
    f = h.sum()
    if mean:
        n = logN.size
        return f / n, grad / n
    return f, grad


def fit_chinchilla_huber(
    N,
    D,
    L,
    *,
    delta: float = 1e-3,
    reduction: str = "sum",
    starts: "str | np.ndarray" = "hoffmann",
    maxiter: int = 15000,
    show_progress: bool = False,
    options: "dict | None" = None,
) -> dict:
    """Fit ``L = E + A/N^alpha + B/D^beta`` by Hoffmann et al.'s Huber-loss procedure.

    Parameters
    ----------
    N, D, L : array_like, shape (n,)
        Parameters, tokens and final loss (nats per token) of ``n >= 6`` runs; all > 0.
    delta : float
        Huber threshold on the log-loss residual (1e-3 in Hoffmann et al.), > 0.
    reduction : {"sum", "mean"}
        Sum the Huber loss over runs (Hoffmann's stated objective) or average it (what they
        actually ran, per Besiroglu et al. 2024). With the mean the objective and its gradient
        are ``n`` times smaller, so L-BFGS-B's default stopping rules (``ftol`` on the
        relative decrease when the objective is < 1, ``gtol`` on the projected gradient)
        fire earlier.
    starts : {"hoffmann", "coarse"} or ndarray (n_starts, 5)
        Starting points ``(a, b, e, alpha, beta)``; see :func:`huber_start_grid`.
    maxiter : int
        Iteration cap of each L-BFGS-B run.
    show_progress : bool
        Progress bar over the starts.
    options : dict, optional
        Extra L-BFGS-B options (``ftol``, ``gtol``, ...); scipy's defaults otherwise, as in
        the published procedure. :data:`TIGHT_LBFGSB` runs to convergence.

    Returns
    -------
    dict
        ``E, A, B, alpha, beta`` (the best start's fit), ``objective``, ``n_starts``,
        ``theta`` = (a, b, e, alpha, beta) with ``A = e^a, B = e^b, E = e^e``, ``nit`` (L-BFGS
        iterations of the best start) and ``a_exponent = beta/(alpha+beta)``.

    Notes
    -----
    Hoffmann et al. (2022), App. D.2, Eq. 10:

    ``min_{a,b,e,alpha,beta} sum_i Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e)
    - log L_i )``,

    where ``LSE`` is log-sum-exp, minimised with L-BFGS from a grid of starts; the best
    objective is kept. Besiroglu et al. (2024, arXiv 2404.10102) report that the authors
    averaged rather than summed the loss. Summing and averaging have the same minimiser;
    they differ only in where L-BFGS-B stops. Its ``ftol`` test is
    ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol`` (2.2e-9 by default), i.e. a test
    on the *absolute* decrease whenever the objective is below 1; with ``delta = 1e-3`` the
    summed objective of a few hundred runs is already about 1e-3, and the averaged one is
    ``n`` times smaller still, so the averaged fit stops where a decrease of 2.2e-9 is a
    large fraction of the objective.

    Examples
    --------
    >>> data = synthetic_chinchilla_data("besiroglu_refit", n=60, noise=0.0, seed=0)
    >>> fit = fit_chinchilla_huber(data["N"], data["D"], data["L"], starts="coarse")
    >>> round(fit["alpha"], 3), round(fit["beta"], 3)
    (0.348, 0.366)
    """
    from scipy.optimize import minimize

    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    if not (delta > 0):
        raise ValueError(f"delta must be > 0; got {delta!r}")
    N, D, L = (positive_array(n, x).ravel() for n, x in (("N", N), ("D", D), ("L", L)))
    if not (N.size == D.size == L.size):
        raise ValueError(
            f"N, D and L must have the same length; got {N.size}, {D.size}, {L.size}"
        )
    if N.size < 6:
        raise ValueError(f"need at least 6 runs to fit 5 constants; got {N.size}")
    grid = (
        huber_start_grid(starts)
        if isinstance(starts, str)
        else np.asarray(starts, float)
    )
    if grid.ndim != 2 or grid.shape[1] != 5:
        raise ValueError(f"starts must have shape (n_starts, 5); got {grid.shape}")
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    mean = reduction == "mean"
    best = None
    it = grid
    if show_progress:
        from ..runtime import progress

        it = progress(grid, total=len(grid), desc=f"Huber fit ({reduction})")
    for x0 in it:
        res = minimize(
            _huber_objective,
            x0,
            args=(logN, logD, logL, delta, mean),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": maxiter, **(options or {})},
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    a, b, e, alpha, beta = best.x
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "B": float(np.exp(b)),
        "alpha": float(alpha),
        "beta": float(beta),
        "objective": float(best.fun),
        "theta": best.x.copy(),
        "nit": int(best.nit),
        "n_starts": len(grid),
        "a_exponent": float(beta / (alpha + beta))
        if alpha + beta != 0
        else float("nan"),
        "reduction": reduction,
    }


TIGHT_LBFGSB = {"ftol": 1e-15, "gtol": 1e-12}
"""L-BFGS-B options that run a Huber fit to convergence (no early stop on a small
objective): used for bootstrap refits, which start at the full-data optimum."""


def bootstrap_chinchilla_huber(
    N,
    D,
    L,
    theta0,
    *,
    reduction: str = "sum",
    n_boot: int = 200,
    seed: int = 0,
    delta: float = 1e-3,
    maxiter: int = 15000,
    options: "dict | None" = None,
    show_progress: bool = False,
) -> dict:
    """Bootstrap the Huber fit of :func:`fit_chinchilla_huber`: resample runs, refit.

    Parameters
    ----------
    N, D, L : array_like, shape (n,)
        Parameters, tokens and final loss of the runs (as in :func:`fit_chinchilla_huber`).
    theta0 : array_like (5,)
        ``(a, b, e, alpha, beta)`` to start every refit from: the full-data fit's
        ``theta``.
    reduction : {"sum", "mean"}
        Objective (both have the same minimiser).
    n_boot : int
        Resamples (with replacement, ``n`` runs each), >= 2.
    seed : int
        Seed of the resampling.
    delta, maxiter :
        As in :func:`fit_chinchilla_huber`.
    options : dict, optional
        L-BFGS-B options; default :data:`TIGHT_LBFGSB` (run to convergence: with scipy's
        default ``ftol`` a refit started at the full-data optimum stops at once and the
        bootstrap spread is far too small).
    show_progress : bool
        Progress bar.

    Returns
    -------
    dict
        ``samples``: dict of arrays (n_boot,) for ``E, A, B, alpha, beta, a_exponent``;
        ``se``: their standard deviations over resamples; ``ci95``: (2.5, 97.5)
        percentiles of each; ``n_boot``.

    Notes
    -----
    Nonparametric bootstrap over runs (Efron 1979), as Besiroglu et al. (2024) use for
    their 95% intervals (4,000 resamples). Each resample is refitted from ``theta0`` only;
    the full-data grid search has already located the basin.

    Examples
    --------
    >>> data = synthetic_chinchilla_data("besiroglu_refit", n=60, noise=0.01, seed=0)
    >>> fit = fit_chinchilla_huber(data["N"], data["D"], data["L"], starts="coarse")
    >>> bs = bootstrap_chinchilla_huber(
    ...     data["N"], data["D"], data["L"], fit["theta"], n_boot=20)
    >>> bool(bs["ci95"]["alpha"][0] < 0.348 < bs["ci95"]["alpha"][1])
    True
    """
    from scipy.optimize import minimize

    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    if not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an int >= 2; got {n_boot!r}")
    N, D, L = (positive_array(n, x).ravel() for n, x in (("N", N), ("D", D), ("L", L)))
    if not (N.size == D.size == L.size) or N.size < 6:
        raise ValueError("N, D and L must have the same length >= 6")
    theta0 = np.asarray(theta0, float).ravel()
    if theta0.size != 5 or not np.all(np.isfinite(theta0)):
        raise ValueError(f"theta0 must hold 5 finite numbers; got {theta0}")
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    rng = np.random.default_rng(seed)
    opts = {"maxiter": maxiter, **(TIGHT_LBFGSB if options is None else options)}
    it = range(n_boot)
    if show_progress:
        from ..runtime import progress

        it = progress(it, total=n_boot, desc=f"bootstrap ({reduction})")
    thetas = np.empty((n_boot, 5))
    for j in it:
        i = rng.integers(0, N.size, N.size)
        res = minimize(
            _huber_objective,
            theta0,
            args=(logN[i], logD[i], logL[i], delta, reduction == "mean"),
            jac=True,
            method="L-BFGS-B",
            options=opts,
        )
        thetas[j] = res.x
    a, b, e, alpha, beta = thetas.T
    samples = {
        "E": np.exp(e),
        "A": np.exp(a),
        "B": np.exp(b),
        "alpha": alpha,
        "beta": beta,
        "a_exponent": beta / (alpha + beta),
    }
    return {
        "samples": samples,
        "se": {k: float(v.std(ddof=1)) for k, v in samples.items()},
        "ci95": {
            k: tuple(float(q) for q in np.percentile(v, [2.5, 97.5]))
            for k, v in samples.items()
        },
        "n_boot": n_boot,
    }


def synthetic_chinchilla_data(
    params="besiroglu_refit",
    *,
    n: int = 240,
    noise: float = 0.01,
    seed: int = 0,
    k: float = 6.0,
) -> dict:
    """Synthetic final losses from a known law at a design like Hoffmann's Fig. 4.

    Parameters
    ----------
    params : str, mapping or ChinchillaConstants
        The true law.
    n : int
        Runs, >= 6.
    noise : float
        Standard deviation of the additive Gaussian noise on the loss (nats); the Epoch
        extraction of Fig. 4 resolves the loss to about 0.01. >= 0.
    seed : int
        RNG seed.
    k : float
        FLOP per token per parameter used to turn C into D = C/(k N).

    Returns
    -------
    dict
        ``N, D, C, L`` (noisy) and ``L_true``.

    Notes
    -----
    The design mimics the extracted Chinchilla data (Besiroglu et al. 2024): C log-uniform
    in [1.4e18, 1.3e22] FLOP, N log-uniform in [5.7e7, 1.6e10], keeping 0.036 <= D/N <= 341.
    """
    if n < 6:
        raise ValueError(f"n must be >= 6; got {n}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    rng = np.random.default_rng(seed)
    Ns, Cs = [], []
    while len(Ns) < n:
        logC = rng.uniform(np.log(1.4e18), np.log(1.3e22), 4 * n)
        logN = rng.uniform(np.log(5.7e7), np.log(1.6e10), 4 * n)
        ratio = np.exp(logC) / (k * np.exp(2 * logN))
        ok = (ratio >= 0.036) & (ratio <= 341)
        Ns.extend(np.exp(logN[ok]).tolist())
        Cs.extend(np.exp(logC[ok]).tolist())
    N, C = np.array(Ns[:n]), np.array(Cs[:n])
    D = C / (k * N)
    L_true = chinchilla_loss(N, D, params)
    L = L_true + noise * rng.standard_normal(n)
    return {"N": N, "D": D, "C": C, "L": L, "L_true": L_true}


def load_epoch_chinchilla_csv(path, *, drop_highest: int = 5, k: float = 6.0) -> dict:
    """Read the Chinchilla Fig. 4 data extracted by Besiroglu et al. (2024).

    Parameters
    ----------
    path : str or path
        ``data/svg_extracted_data.csv`` of ``epoch-research/analyzing-chinchilla`` (columns
        ``x, y, color, Model Size, Training FLOP, hex_color, loss``; not shipped here).
    drop_highest : int
        Rows with the highest loss to drop (Besiroglu et al. drop 5 outliers), >= 0.
    k : float
        ``D = C / (k N)`` (the CSV has no token column).

    Returns
    -------
    dict of ndarrays ``N, D, C, L``.
    """
    import pandas as pd

    df = pd.read_csv(path)
    for col in ("Model Size", "Training FLOP", "loss"):
        if col not in df.columns:
            raise ValueError(
                f"{path}: column {col!r} missing; found {list(df.columns)}"
            )
    if drop_highest < 0:
        raise ValueError(f"drop_highest must be >= 0; got {drop_highest}")
    if drop_highest:
        df = df[df["loss"] < np.sort(df["loss"].to_numpy())[-drop_highest]]
    N = df["Model Size"].to_numpy(float)
    C = df["Training FLOP"].to_numpy(float)
    return {"N": N, "C": C, "D": C / (k * N), "L": df["loss"].to_numpy(float)}
