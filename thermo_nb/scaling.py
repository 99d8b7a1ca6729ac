"""Compute-optimal scaling, its fit, and the energy floor of training.

Three things live here, each a closed form or a fit that the chapter
``book/dimensional_analysis.ipynb`` calls:

* the Chinchilla parametric loss ``L(N, D) = E + A/N^alpha + B/D^beta`` with the published
  constant sets (Hoffmann et al. 2022, rounded and unrounded; Besiroglu et al. 2024 refit),
  its closed-form compute-optimal allocation ``N_opt(C)``, ``D_opt(C)`` under ``C = k N D``,
  and the Huber-loss fit (delta = 1e-3, L-BFGS from a grid of starts) with the Huber loss
  summed or averaged;
* the Landauer limit ``k_B T ln 2`` (from :mod:`scipy.constants`), accelerator energy per
  FLOP from published peak throughput and board power, and published training energies;
* McCandlish et al.'s (2018) steps-versus-batch law ``S = S_min (1 + B_noise / B)`` and the
  expected squared norm of a batch-mean gradient ``|G|^2 + tr(Sigma)/m``.

Every constant carries its source in :data:`CHINCHILLA_CONSTANTS`, :data:`GPU_SPECS` and
:data:`TRAINING_RUNS`.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "CHINCHILLA_CONSTANTS", "CHINCHILLA_TABLE3", "GPU_SPECS", "TRAINING_RUNS",
    "ChinchillaConstants", "chinchilla_loss", "compute_optimal_allocation",
    "compute_optimal_exponents", "huber_loss", "huber_start_grid", "fit_chinchilla_huber",
    "synthetic_chinchilla_data", "load_epoch_chinchilla_csv", "landauer_energy_per_bit",
    "energy_per_flop", "landauer_floor_energy", "mccandlish_steps", "fit_steps_vs_batch",
    "batch_gradient_norm_sq_expected", "batch_gradient_norms", "steps_to_target_vs_batch",
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
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}


CHINCHILLA_CONSTANTS: dict[str, ChinchillaConstants] = {
    "hoffmann_rounded": ChinchillaConstants(
        E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
        source="Hoffmann et al. 2022 (arXiv 2203.15556), Eq. 10 / Approach 3, as printed"),
    "hoffmann_unrounded": ChinchillaConstants(
        E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186),
        alpha=0.33917084, beta=0.2849083,
        source="Hoffmann et al. 2022, unrounded values of the TeX source as given in log form "
               "in epoch-research/analyzing-chinchilla, data_analysis.ipynb (true_params)"),
    "besiroglu_refit": ChinchillaConstants(
        E=math.exp(0.59711196), A=math.exp(6.17795598), B=math.exp(7.64273236),
        alpha=0.34781303, beta=0.36585412,
        source="Besiroglu et al. 2024 (arXiv 2404.10102), Huber-likelihood refit on the "
               "240 points extracted from Hoffmann's Fig. 4 (notebook cell 25, log form)"),
}
"""The three published constant sets of the Chinchilla parametric loss."""

CHINCHILLA_TABLE3 = {
    # Hoffmann et al. 2022, Table 3 (Approach-1 projections): parameters, FLOPs, tokens
    "parameters": np.array([400e6, 1e9, 10e9, 67e9, 175e9, 280e9, 1e12]),
    "flops": np.array([1.92e19, 1.21e20, 1.23e22, 5.76e23, 3.85e24, 9.90e24, 1.27e26]),
    "tokens": np.array([8.0e9, 20.2e9, 205.1e9, 1.5e12, 3.7e12, 5.9e12, 21.2e12]),
    "source": "Hoffmann et al. 2022 (arXiv 2203.15556), Table 3",
}

GPU_SPECS: dict[str, dict] = {
    # dense (no 2:4 sparsity) peak throughput in FLOP/s and board power (TDP) in W
    "H100 SXM5": {"power_w": 700.0,
                  "peak_flops": {"bf16": 989.4e12, "fp8": 1978.9e12, "tf32": 494.7e12,
                                 "fp32": 66.9e12},
                  "source": "NVIDIA H100 Tensor Core GPU datasheet (SXM5; dense = half the "
                            "'with sparsity' figure)"},
    "A100 SXM4": {"power_w": 400.0,
                  "peak_flops": {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
                  "source": "NVIDIA A100 Tensor Core GPU datasheet (SXM4, dense)"},
    "V100 SXM2": {"power_w": 300.0, "peak_flops": {"fp16": 125e12, "fp32": 15.7e12},
                  "source": "NVIDIA Tesla V100 datasheet (SXM2)"},
}
"""Published peak dense throughput (FLOP/s) and board power (W) of three accelerators."""

TRAINING_RUNS: dict[str, dict] = {
    "GPT-3": {"flops": 3.14e23, "energy_mwh": 1287.0, "parameters": 175e9, "tokens": 300e9,
              "source": "Patterson et al. 2021 (arXiv 2104.10350), Table 4"},
    "Chinchilla": {"flops": 5.76e23, "energy_mwh": None, "parameters": 70e9, "tokens": 1.4e12,
                   "source": "Hoffmann et al. 2022: Gopher compute budget, Table 3; no "
                             "energy figure published"},
}
"""Published compute (FLOP) and, where known, energy (MWh) of two training runs."""


def _constants(params) -> ChinchillaConstants:
    if isinstance(params, ChinchillaConstants):
        return params
    if isinstance(params, str):
        if params not in CHINCHILLA_CONSTANTS:
            raise ValueError(f"params must be one of {sorted(CHINCHILLA_CONSTANTS)} or a "
                             f"mapping with E, A, B, alpha, beta; got {params!r}")
        return CHINCHILLA_CONSTANTS[params]
    if isinstance(params, Mapping):
        missing = {"E", "A", "B", "alpha", "beta"} - set(params)
        if missing:
            raise ValueError(f"params is missing {sorted(missing)}")
        return ChinchillaConstants(**{k: float(params[k]) for k in
                                      ("E", "A", "B", "alpha", "beta")})
    raise ValueError(f"params must be a name, a mapping or ChinchillaConstants; got {params!r}")


def _positive(name, x):
    x = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"{name} must be finite and > 0")
    return x


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
    N, D = _positive("N", N), _positive("D", D)
    return c.E + c.A / N ** c.alpha + c.B / D ** c.beta


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
    return {"a": c.beta / s, "b": c.alpha / s,
            "G": (c.alpha * c.A / (c.beta * c.B)) ** (1.0 / s),
            "loss_exponent": c.alpha * c.beta / s}


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
        raise ValueError(f"k must be a finite number > 0 (FLOP/token/parameter); got {k!r}")
    C = _positive("C", C)
    ex = compute_optimal_exponents(params)
    N = ex["G"] * (C / k) ** ex["a"]
    D = (C / k) ** ex["b"] / ex["G"]
    return {"N_opt": N, "D_opt": D, "tokens_per_parameter": D / N,
            "loss_opt": chinchilla_loss(N, D, params)}


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
        ab, e, AB = np.arange(0, 2.01, 0.5), np.arange(-1, 1.01, 0.5), np.arange(0, 25.1, 5)
    elif kind == "coarse":
        ab, e, AB = np.array([0.0, 1.0, 2.0]), np.array([-1.0, 0.0, 1.0]), np.array([0., 10., 20.])
    else:
        raise ValueError(f"kind must be 'hoffmann' or 'coarse'; got {kind!r}")
    return np.array([(a, b, ee, al, be) for a, b, ee, al, be in
                     itertools.product(AB, AB, e, ab, ab)], dtype=float)


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
    grad = np.array([np.sum(dh * w[0]), np.sum(dh * w[1]), np.sum(dh * w[2]),
                     -np.sum(dh * w[0] * logN), -np.sum(dh * w[1] * logD)])
    f = h.sum()
    if mean:
        n = logN.size
        return f / n, grad / n
    return f, grad


def fit_chinchilla_huber(N, D, L, *, delta: float = 1e-3, reduction: str = "sum",
                         starts: "str | np.ndarray" = "hoffmann", maxiter: int = 15000,
                         show_progress: bool = False) -> dict:
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
    averaged rather than summed the loss.

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
    N, D, L = (_positive(n, x).ravel() for n, x in (("N", N), ("D", D), ("L", L)))
    if not (N.size == D.size == L.size):
        raise ValueError(f"N, D and L must have the same length; got {N.size}, {D.size}, "
                         f"{L.size}")
    if N.size < 6:
        raise ValueError(f"need at least 6 runs to fit 5 constants; got {N.size}")
    grid = huber_start_grid(starts) if isinstance(starts, str) else np.asarray(starts, float)
    if grid.ndim != 2 or grid.shape[1] != 5:
        raise ValueError(f"starts must have shape (n_starts, 5); got {grid.shape}")
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    mean = reduction == "mean"
    best = None
    it = grid
    if show_progress:
        from .runtime import progress

        it = progress(grid, total=len(grid), desc=f"Huber fit ({reduction})")
    for x0 in it:
        res = minimize(_huber_objective, x0, args=(logN, logD, logL, delta, mean), jac=True,
                       method="L-BFGS-B", options={"maxiter": maxiter})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    a, b, e, alpha, beta = best.x
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
            "alpha": float(alpha), "beta": float(beta), "objective": float(best.fun),
            "theta": best.x.copy(), "nit": int(best.nit), "n_starts": len(grid),
            "a_exponent": float(beta / (alpha + beta)) if alpha + beta != 0 else float("nan"),
            "reduction": reduction}


def synthetic_chinchilla_data(params="besiroglu_refit", *, n: int = 240, noise: float = 0.01,
                              seed: int = 0, k: float = 6.0) -> dict:
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
            raise ValueError(f"{path}: column {col!r} missing; found {list(df.columns)}")
    if drop_highest < 0:
        raise ValueError(f"drop_highest must be >= 0; got {drop_highest}")
    if drop_highest:
        df = df[df["loss"] < np.sort(df["loss"].to_numpy())[-drop_highest]]
    N = df["Model Size"].to_numpy(float)
    C = df["Training FLOP"].to_numpy(float)
    return {"N": N, "C": C, "D": C / (k * N), "L": df["loss"].to_numpy(float)}


# ----------------------------------------------------------------------------- energy

def landauer_energy_per_bit(temperature_k: float = 300.0) -> float:
    """Landauer's minimum heat to erase one bit, ``k_B T ln 2`` in joules.

    Parameters
    ----------
    temperature_k : float
        Temperature of the heat bath in kelvin, > 0.

    Returns
    -------
    float
        Joules per erased bit (2.8710e-21 J at 300 K).

    Notes
    -----
    Landauer (1961), "Irreversibility and heat generation in the computing process", IBM J.
    Res. Dev. 5, 183. ``k_B`` is the exact SI value (2019) from :mod:`scipy.constants`.

    Examples
    --------
    >>> f"{landauer_energy_per_bit(300.0):.4e}"
    '2.8710e-21'
    """
    from scipy.constants import Boltzmann

    if not (temperature_k > 0 and math.isfinite(temperature_k)):
        raise ValueError(f"temperature_k must be a finite number > 0; got {temperature_k!r}")
    return Boltzmann * temperature_k * math.log(2.0)


def energy_per_flop(gpu: str, precision: str = "bf16", mfu: float = 1.0) -> float:
    """Energy per FLOP of an accelerator at board power: ``P / (mfu * peak)``, in J/FLOP.

    Parameters
    ----------
    gpu : str
        A key of :data:`GPU_SPECS` ("H100 SXM5", "A100 SXM4", "V100 SXM2").
    precision : str
        A key of that GPU's ``peak_flops`` (dense), e.g. "bf16", "fp32".
    mfu : float
        Model FLOP utilisation in (0, 1]; 1 gives the datasheet lower bound.

    Returns
    -------
    float
        Joules per FLOP.

    Examples
    --------
    >>> f"{energy_per_flop('H100 SXM5', 'bf16'):.3e}"
    '7.075e-13'
    """
    if gpu not in GPU_SPECS:
        raise ValueError(f"gpu must be one of {sorted(GPU_SPECS)}; got {gpu!r}")
    spec = GPU_SPECS[gpu]
    if precision not in spec["peak_flops"]:
        raise ValueError(f"precision for {gpu} must be one of {sorted(spec['peak_flops'])}; "
                         f"got {precision!r}")
    if not (0 < mfu <= 1):
        raise ValueError(f"mfu must be in (0, 1]; got {mfu!r}")
    return spec["power_w"] / (mfu * spec["peak_flops"][precision])


def landauer_floor_energy(flops, bits_per_flop: float = 1.0,
                          temperature_k: float = 300.0):
    """Landauer floor of a computation: ``C * b * k_B T ln 2`` joules.

    Parameters
    ----------
    flops : array_like
        Compute C in FLOP, > 0.
    bits_per_flop : float
        Bits b irreversibly erased per FLOP, >= 0 (1 is the seed's "one FLOP, one chance to
        change a bit"; 16 would be a whole bf16 word).
    temperature_k : float
        Bath temperature in kelvin.

    Returns
    -------
    ndarray or float
        Joules.

    Notes
    -----
    Landauer (1961): erasing one bit dissipates at least ``k_B T ln 2``.

    Examples
    --------
    >>> f"{landauer_floor_energy(5.76e23, 16):.3e}"
    '2.646e+04'
    """
    if bits_per_flop < 0:
        raise ValueError(f"bits_per_flop must be >= 0; got {bits_per_flop}")
    return _positive("flops", flops) * bits_per_flop * landauer_energy_per_bit(temperature_k)


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
    B = _positive("B", B)
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

    B, S = _positive("B", B).ravel(), _positive("S", S).ravel()
    if B.size != S.size or B.size < 3:
        raise ValueError(f"B and S must have the same length >= 3; got {B.size}, {S.size}")
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
    return {"S_min": S_min, "B_crit": B_crit, "E_min": S_min * B_crit,
            "S_min_se": S_min * se[0], "B_crit_se": B_crit * se[1],
            "log_B_crit_se": float(se[1]),
            "rms_log_residual": float(np.sqrt(np.mean(res.fun ** 2))),
            "rms_log_residual_perfect": float(np.sqrt(np.mean(perfect ** 2))),
            "rms_log_residual_flat": float(np.sqrt(np.mean(flat ** 2))), "n": n}


def batch_gradient_norm_sq_expected(m, G_norm2: float, trace_sigma: float,
                                    n_population: int | None = None):
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
    m = _positive("m", m)
    noise = trace_sigma / m
    if n_population is not None:
        if n_population < 2 or np.any(m > n_population):
            raise ValueError(f"n_population must be >= 2 and >= every m; got {n_population}")
        noise = noise * (n_population - m) / (n_population - 1)
    return G_norm2 + noise


def batch_gradient_norms(per_sample_grads, batch_sizes: Sequence[int], *, n_draws: int = 64,
                         generator: "torch.Generator | None" = None) -> dict:
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

    g = per_sample_grads if isinstance(per_sample_grads, torch.Tensor) else \
        torch.as_tensor(np.asarray(per_sample_grads))
    if g.ndim != 2 or g.shape[0] < 2:
        raise ValueError(f"per_sample_grads must have shape (n >= 2, P); got {tuple(g.shape)}")
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
    out = {k: [] for k in ("m", "norm_mean", "norm_mean_se", "norm_sq_mean", "norm_sq_se",
                           "mean_of_norms")}
    for m in ms:
        idx = torch.randint(n, (n_draws, m), generator=gen).to(g.device)
        W = torch.zeros(n_draws, n, dtype=g.dtype, device=g.device)
        W.scatter_add_(1, idx, torch.full(idx.shape, 1.0 / m, dtype=g.dtype, device=g.device))
        gm = W @ g
        nm = gm.norm(dim=1)
        out["m"].append(m)
        out["norm_mean"].append(float(nm.mean()))
        out["norm_mean_se"].append(float(nm.std() / math.sqrt(n_draws)))
        out["norm_sq_mean"].append(float((nm ** 2).mean()))
        out["norm_sq_se"].append(float((nm ** 2).std() / math.sqrt(n_draws)))
        out["mean_of_norms"].append(float((W @ norms).mean()))
    res = {k: np.array(v) for k, v in out.items()}
    res.update(G_norm2=G2, trace_sigma=tr, B_simple=tr / G2)
    return res


def _stacked_mlp_init(M, d_in, hidden, d_out, gen, device, dtype):
    """PyTorch's default nn.Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    for M stacked one-hidden-layer MLPs (weights stored as (M, fan_in, fan_out))."""
    import torch

    def u(shape, fan_in):
        return ((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1)
                / math.sqrt(fan_in)).to(device=device, dtype=dtype)

    return [u((M, d_in, hidden), d_in), u((M, 1, hidden), d_in),
            u((M, hidden, d_out), hidden), u((M, 1, d_out), hidden)]


def _stacked_mlp_loss(params, xb, yb):
    """Mean cross-entropy of each of the M stacked MLPs on its own batch, shape (M,)."""
    import torch
    from torch.nn import functional as F

    W1, b1, W2, b2 = params
    out = torch.baddbmm(b2, torch.relu(torch.baddbmm(b1, xb, W1)), W2)
    M, B, C = out.shape
    return F.cross_entropy(out.reshape(M * B, C), yb.reshape(M * B),
                           reduction="none").reshape(M, B).mean(dim=1)


def steps_to_target_vs_batch(x, y, *, hidden: int, batch_sizes: Sequence[int],
                             lrs: Sequence[float], target_loss: float, max_steps: int,
                             n_seeds: int = 1, seed: int = 0, eval_resolution: float = 0.02,
                             show_progress: bool = True) -> dict:
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
        the fastest lr of the same seed did: those lrs cannot be the best); ``best_steps`` (n_B, n_seeds) min over lrs; ``best_lr``;
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

    from .runtime import progress

    if not target_loss > 0:
        raise ValueError(f"target_loss must be > 0 nats; got {target_loss!r}")
    for name, v in (("max_steps", max_steps), ("hidden", hidden), ("n_seeds", n_seeds)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}")
    bs = [int(b) for b in batch_sizes]
    lrs = [float(v) for v in lrs]
    if not bs or min(bs) < 1 or not lrs or min(lrs) <= 0:
        raise ValueError("batch_sizes must be ints >= 1 and lrs floats > 0 (both non-empty)")
    if x.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x must be (N, d) and y (N,); got {tuple(x.shape)}, {tuple(y.shape)}")
    dev, dt = x.device, x.dtype
    n, d_in = x.shape
    n_cls = int(y.max()) + 1
    n_lr = len(lrs)
    M = n_lr * n_seeds
    lr_vec = torch.tensor([lr for lr in lrs for _ in range(n_seeds)], dtype=dt, device=dev)
    steps = np.full((len(bs), n_lr, n_seeds), np.inf)
    div = np.zeros((len(bs), n_lr, n_seeds), dtype=bool)
    it = progress(bs, total=len(bs), desc="batch sweep") if show_progress else bs
    for ib, B in enumerate(it):
        init = [_stacked_mlp_init(1, d_in, hidden, n_cls,
                                  torch.Generator().manual_seed(seed * 1000 + s), dev, dt)
                for s in range(n_seeds)]
        params = [torch.cat([init[s][k] for _ in lrs for s in range(n_seeds)]).requires_grad_()
                  for k in range(4)]
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
                    full = _stacked_mlp_loss(params, x.expand(M, n, d_in),
                                             y.expand(M, n)).double().cpu().numpy()
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
    return {"batch_sizes": np.array(bs), "lrs": np.array(lrs), "steps": steps,
            "best_steps": best, "best_lr": best_lr, "steps_median": med, "diverged": div}
