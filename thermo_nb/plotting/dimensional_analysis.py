"""Figures of the chapter *Dimensional analysis of training*
(``book/dimensional_analysis.ipynb``).

One function per figure; each draws exactly what the chapter's figure cell drew and
returns the matplotlib ``Figure`` (the book style, set by ``validate_parameters``, fixes
the size of single-panel figures; rows of panels pass their own ``figsize``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..analysis.batch_size import batch_gradient_norm_sq_expected, mccandlish_steps
from ..theory.scaling import (
    CHINCHILLA_CONSTANTS,
    CHINCHILLA_TABLE3,
    chinchilla_loss,
    compute_optimal_allocation,
)

__all__ = [
    "bit_changes_per_step",
    "gradient_norm_vs_batch",
    "iso_loss_contours",
    "steps_to_target_vs_batch",
    "tokens_per_parameter",
]

#: Compute budgets (FLOP) along which the compute-optimal frontier is drawn.
COMPUTE_GRID = np.logspace(18, 26, 50)


def iso_loss_contours(table3: Mapping | None = None, compute=None):
    """Iso-loss contours of the Chinchilla law with the compute-optimal frontier.

    One panel per constant set of ``CHINCHILLA_CONSTANTS``: contours of
    ``L(N, D)`` (nats/token) over log10 N and log10 D, the frontier ``N_opt(C)``,
    ``D_opt(C)`` for ``C = 6ND``, and the Table 3 projections of Hoffmann et al.

    Parameters
    ----------
    table3 : mapping, optional
        Arrays ``"parameters"`` and ``"tokens"`` (default ``CHINCHILLA_TABLE3``).
    compute : array_like, optional
        Compute budgets (FLOP) of the frontier (default ``COMPUTE_GRID``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    t3 = CHINCHILLA_TABLE3 if table3 is None else table3
    Cs = COMPUTE_GRID if compute is None else np.asarray(compute)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    logN, logD = np.meshgrid(np.linspace(7, 12.5, 200), np.linspace(8, 14.5, 200))
    for ax, name in zip(axes, CHINCHILLA_CONSTANTS):
        L = chinchilla_loss(10**logN, 10**logD, name)
        levels = [1.9, 2.0, 2.2, 2.5, 3.0, 3.5]
        cs = ax.contour(logN, logD, L, levels=levels, cmap="viridis")
        ax.clabel(cs, fontsize=7, fmt="%.1f")
        opt = compute_optimal_allocation(Cs, name)
        ax.plot(
            np.log10(opt["N_opt"]),
            np.log10(opt["D_opt"]),
            "k-",
            label="compute-optimal",
        )
        ax.plot(
            np.log10(t3["parameters"]),
            np.log10(t3["tokens"]),
            "r^",
            ms=4,
            label="Table 3",
        )
        ax.set(title=name.replace("_", " "), xlabel="log10 N (parameters)")
    axes[0].set_ylabel("log10 D (tokens)")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "Iso-loss contours (nats/token) and the compute-optimal frontier C = 6ND"
    )
    return fig


def tokens_per_parameter(table3: Mapping | None = None, compute=None):
    """Tokens per parameter ``D_opt / N_opt`` along the compute-optimal frontier.

    One line per constant set of ``CHINCHILLA_CONSTANTS``, the Table 3 (Approach 1)
    projections as triangles and the "20 tokens per parameter" rule as a dotted line.

    Parameters
    ----------
    table3 : mapping, optional
        Arrays ``"flops"``, ``"parameters"`` and ``"tokens"`` (default
        ``CHINCHILLA_TABLE3``).
    compute : array_like, optional
        Compute budgets (FLOP) of the frontier (default ``COMPUTE_GRID``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    t3 = CHINCHILLA_TABLE3 if table3 is None else table3
    Cs = COMPUTE_GRID if compute is None else np.asarray(compute)
    fig, ax = plt.subplots()
    for name in CHINCHILLA_CONSTANTS:
        ax.loglog(
            Cs,
            compute_optimal_allocation(Cs, name)["tokens_per_parameter"],
            label=name.replace("_", " "),
        )
    ratio_t3 = t3["tokens"] / t3["parameters"]
    ax.loglog(t3["flops"], ratio_t3, "r^", label="Table 3 (Approach 1)")
    ax.axhline(20, color="gray", ls=":", label="20 tokens / parameter")
    ax.set(
        xlabel="compute C (FLOP)",
        ylabel="D_opt / N_opt (tokens per parameter)",
        title="Tokens per parameter along the compute-optimal frontier",
    )
    ax.legend(fontsize=8)
    return fig


def bit_changes_per_step(runs: Mapping[str, Mapping]):
    """Parameters changed, bits flipped and training loss per SGD step.

    Parameters
    ----------
    runs : mapping
        Run name (``"fp32"``, ``"bf16"``) to the record of
        :func:`thermo_nb.analysis.bitflips.train_tracking_bit_changes` (keys ``step``,
        ``fraction_params_changed``, ``predicted_fraction_changed``,
        ``fraction_bits_changed``, ``loss``).

    Returns
    -------
    matplotlib.figure.Figure
        Three panels; the black dots are the round-to-nearest prediction.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for name, r in runs.items():
        axes[0].plot(r["step"], r["fraction_params_changed"], label=f"{name} measured")
        axes[0].plot(r["step"][::10], r["predicted_fraction_changed"][::10], "k.", ms=3)
        axes[1].plot(r["step"], r["fraction_bits_changed"], label=name)
        axes[2].semilogy(r["step"], r["loss"], label=name, lw=0.7)
    axes[0].plot([], [], "k.", label="round-to-nearest rule")
    axes[0].set(
        xlabel="SGD step",
        ylabel="fraction of parameters changed",
        title="Parameters changed per step",
    )
    axes[1].set(
        xlabel="SGD step",
        ylabel="fraction of stored bits flipped",
        title="Bits flipped per step",
    )
    axes[2].set(
        xlabel="SGD step", ylabel="minibatch loss (nats)", title="Training loss"
    )
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


def gradient_norm_vs_batch(curves: Mapping, steps: Sequence[int]):
    """Norm of a batch gradient against the batch size at a few training snapshots.

    Panels at steps 0, 100 and 1000 where recorded (else the first two of ``steps``):
    the measured root-mean-square and mean ``|g_m|``, the law
    ``sqrt(|G|^2 + tr(Sigma)/m)``, the seed's ``|g_1| / sqrt(m)`` and the mean of the
    per-sample norms.

    Parameters
    ----------
    curves : mapping
        Snapshot step to ``{"curve": batch_gradient_norms(...), "loss": float, ...}``.
    steps : sequence of int
        The recorded snapshot steps (keys of ``curves``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    show = [s for s in steps if s in (0, 100, 1000)] or steps[:2]
    fig, axes = plt.subplots(1, len(show), figsize=(4 * len(show), 3.6), sharey=True)
    for ax, s in zip(np.atleast_1d(axes), show):
        c = curves[s]["curve"]
        m = c["m"]
        rms = np.sqrt(c["norm_sq_mean"])
        ax.errorbar(
            m,
            rms,
            yerr=c["norm_sq_se"] / rms,
            fmt="o",
            ms=3,
            label="rms |g_m| measured (±2 s.e.)",
        )
        ax.plot(
            m,
            c["norm_mean"],
            "x",
            ms=4,
            color="C0",
            alpha=0.6,
            label="mean |g_m| measured",
        )
        law = np.sqrt(
            batch_gradient_norm_sq_expected(m, c["G_norm2"], c["trace_sigma"])
        )
        ax.plot(m, law, "k-", label="sqrt(|G|² + tr Σ / m)")
        ax.plot(m, law[0] / np.sqrt(m), "r--", label="seed: |g_1| / sqrt(m)")
        ax.plot(m, c["mean_of_norms"], "g:", label="mean of per-sample norms")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="batch size m",
            title=f"step {s}, loss {curves[s]['loss']:.2f}",
        )
    np.atleast_1d(axes)[0].set_ylabel("gradient norm (nats per unit weight)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    return fig


def norm_ratio_vs_batch(ratios: Mapping, B_simple: Mapping):
    """The seed's ratio ``rho_m = |g_m| / mean |g_i|`` against ``m / B_simple``.

    Parameters
    ----------
    ratios : mapping
        Snapshot step to :func:`thermo_nb.analysis.batch_size.norm_ratio_slopes` output.
    B_simple : mapping
        Snapshot step to the population ``B_simple`` at that step.

    Returns
    -------
    matplotlib.figure.Figure
        ``rho_m / rho_1`` times ``sqrt(B_simple)`` against ``m / B_simple`` (so that the
        seed's ``1/sqrt(m)`` is one line for every snapshot), with the seed's line.
    """
    fig, ax = plt.subplots()
    for i, (s, r) in enumerate(ratios.items()):
        x = r["m"] / B_simple[s]
        y = r["rho"] * np.sqrt(B_simple[s])
        ax.errorbar(
            x, y, yerr=2 * r["rho_se"] * np.sqrt(B_simple[s]), fmt="o-", ms=3,
            color=f"C{i % 10}", label=f"step {s} (B_simple {B_simple[s]:.0f})",
        )  # fmt: skip
    xf = np.logspace(-3.5, 3.5, 50)
    ax.plot(xf, 1 / np.sqrt(xf), "r--", label="seed: rho ∝ 1/sqrt(m)")
    ax.axvline(0.1, color="gray", ls=":", lw=0.8)
    ax.axvline(10, color="gray", ls=":", lw=0.8)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="m / B_simple",
        ylabel="rho_m sqrt(B_simple)",
        title="Norm of the mean over mean of the norms (±2 s.e.)",
    )
    ax.legend(fontsize=7)
    return fig


def steps_to_target_vs_batch(
    sweep: Mapping, fit: Mapping, target_loss: float, other: Mapping | None = None
):
    """Steps to a target loss against batch size, with McCandlish et al.'s law.

    Parameters
    ----------
    sweep : mapping
        The result of :func:`thermo_nb.analysis.batch_size.steps_to_target_vs_batch`
        (keys ``batch_sizes``, ``best_steps``, ``steps_median``).
    fit : mapping
        The result of :func:`thermo_nb.analysis.batch_size.fit_steps_vs_batch` (keys
        ``S_min``, ``B_crit``).
    target_loss : float
        The training loss (nats) that ended each run, for the axis label.
    other : mapping, optional
        ``{"label": str, "sweep": ..., "fit": ...}``: a second sweep (e.g. bf16) drawn
        with its medians and fit in another colour.

    Returns
    -------
    matplotlib.figure.Figure
        Each seed as a faint dot, the median over seeds, the fitted
        ``S_min (1 + B_crit / B)`` and perfect scaling ``S_min B_crit / B``.
    """
    B = sweep["batch_sizes"].astype(float)
    Bf = np.logspace(0, np.log10(B.max()), 100)
    fig, ax = plt.subplots()
    for s in range(sweep["best_steps"].shape[1]):
        ax.plot(B, sweep["best_steps"][:, s], "o", color="C0", alpha=0.35, ms=4)
    ax.plot(B, sweep["steps_median"], "o", color="C0", label="median over seeds")
    ax.plot(
        Bf,
        mccandlish_steps(Bf, fit["S_min"], fit["B_crit"]),
        "k-",
        label=f"S_min (1 + B_crit/B): B_crit = {fit['B_crit']:.0f}",
    )
    ax.plot(
        Bf,
        fit["S_min"] * fit["B_crit"] / Bf,
        "k:",
        label="perfect scaling S_min B_crit / B",
    )
    ax.axvline(fit["B_crit"], color="gray", ls="--", lw=0.8)
    if other is not None:
        Bo = other["sweep"]["batch_sizes"].astype(float)
        ax.plot(Bo, other["sweep"]["steps_median"], "s", color="C1", mfc="none",
                label=f"{other['label']}: median over seeds")  # fmt: skip
        ax.plot(
            Bf,
            mccandlish_steps(Bf, other["fit"]["S_min"], other["fit"]["B_crit"]),
            "-", color="C1", lw=1,
            label=f"{other['label']}: B_crit = {other['fit']['B_crit']:.0f}",
        )  # fmt: skip
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B (examples)",
        ylabel=f"steps to train loss {target_loss}",
        title="Steps to target against batch size (best lr)",
    )
    ax.legend(fontsize=8)
    return fig
