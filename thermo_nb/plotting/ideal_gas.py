"""Figures of the chapter *Scale-invariant networks as an ideal gas*.

Each helper takes the chapter's measured arrays and closed-form predictions and draws
one figure, so the notebook's figure cells are one line.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_isotropic_laws",
    "plot_vmf_energy_entropy",
    "plot_network_laws",
    "plot_relaxation",
]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _no_minor_labels(fig):
    """Log axes with less than a decade label their minor ticks; they overlap: drop."""
    from matplotlib.ticker import NullFormatter

    for a in fig.axes:
        a.xaxis.set_minor_formatter(NullFormatter())
        a.yaxis.set_minor_formatter(NullFormatter())


def plot_isotropic_laws(runs, theories, dim):
    """Radius (fixed ELR, fixed LR) and pressure (fixed sphere) of the isotropic model
    against the ideal-gas law (solid) and the discretised law (dashed)."""
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    titles = {
        "fixed_elr": "fixed ELR: r² vs ELR",
        "fixed_lr": "fixed LR: r² vs LR",
        "fixed_sphere": "fixed sphere: p vs ELR",
    }
    for k, prot in enumerate(("fixed_elr", "fixed_lr", "fixed_sphere")):
        run, th = runs[prot], theories[prot]
        sphere = prot == "fixed_sphere"
        y = run.pressure_mean if sphere else run.r2_mean
        ye = run.pressure_se if sphere else run.r2_se
        ideal = th["p_ideal"] if sphere else th["r2_ideal"]
        disc = th["p_disc"] if sphere else th["r2_disc"]
        for j, bj in enumerate(run.b):
            c = f"C{j % 10}"
            lab = f"r0 = {bj:g}" if sphere else f"λ = {bj:.3g}"
            ax[k].errorbar(run.a, y[:, j], 3 * ye[:, j], fmt="o", ms=3, color=c)
            ax[k].plot(run.a, ideal[:, j], "-", color=c, lw=1, label=lab)
            ax[k].plot(run.a, disc[:, j], "--", color=c, lw=0.8)
        ax[k].set(
            xscale="log",
            yscale="log",
            xlabel="ELR η" if prot != "fixed_lr" else "learning rate η",
            ylabel="pressure p" if sphere else "stationary r² (mean)",
            title=f"{titles[prot]} (D = {dim})",
        )
        ax[k].legend(fontsize=7)
    _no_minor_labels(fig)
    return fig


def plot_vmf_energy_entropy(runs, dims):
    """Mean loss U and sphere entropy S of the fixed-sphere runs against the exact vMF
    forms (solid) and the large-kappa forms (dotted); ``runs[d] = (run, theory,
    entropies)``."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, d in enumerate(dims):
        run, th, ent = runs[d]
        c = f"C{i}"
        t = th["T"][:, 0]
        order = np.argsort(t)
        ax[0].errorbar(
            th["T"].ravel(),
            run.energy_mean.ravel(),
            3 * run.energy_se.ravel(),
            fmt="o",
            ms=3,
            color=c,
            label=f"measured, D = {d}",
        )
        ax[0].plot(t[order], th["U"][order, 0], "-", color=c, lw=1, label="exact vMF")
        ax[0].plot(t[order], th["U_large"][order, 0], ":", color=c, lw=1)
        if d == 3:
            ax[1].errorbar(
                th["T"].ravel(),
                ent["sphere"].ravel(),
                3 * ent["sphere_se"].ravel(),
                fmt="o",
                ms=3,
                color=c,
                label=f"KL estimate, D = {d}",
            )
            ax[1].plot(t[order], th["S"][order, 0], "-", color=c, lw=1, label="exact")
            ax[1].plot(
                t[order], th["S_large"][order, 0], ":", color=c, lw=1, label="large κ"
            )
    ax[0].set(
        xscale="log",
        yscale="log",
        xlabel="temperature T = ησ²/2",
        ylabel="U (loss units)",
        title="Energy",
    )
    ax[1].set(
        xscale="log", xlabel="temperature T", ylabel="S_sphere (nats)", title="Entropy"
    )
    for a in ax:
        a.legend(fontsize=7)
    _no_minor_labels(fig)
    return fig


def plot_network_laws(points):
    """Measured against predicted radius / pressure of the network, one panel per law.

    ``points``: ``{title: (measured, ideal, discretised, rel_se)}``."""
    plt = _plt()
    fig, ax = plt.subplots(1, len(points), figsize=(4.3 * len(points), 3.8))
    for a, (title, (meas, ideal, disc, rel_se)) in zip(
        np.atleast_1d(ax), points.items()
    ):
        a.errorbar(ideal, meas, 3 * rel_se * meas, fmt="o", ms=4, label="ideal-gas law")
        a.plot(disc, meas, "s", ms=3, mfc="none", label="discretised law")
        lo = min(np.nanmin(meas), np.nanmin(ideal), np.nanmin(disc)) / 1.3
        hi = max(np.nanmax(meas), np.nanmax(ideal), np.nanmax(disc)) * 1.3
        a.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        a.set(
            xscale="log",
            yscale="log",
            xlabel="predicted",
            ylabel="measured",
            title=title,
        )
        a.legend(fontsize=7)
    _no_minor_labels(fig)
    return fig


def plot_relaxation(curves):
    """Normalised gap of the mean r^4 against 4 eta lambda t (prediction: exp(-x)).

    ``curves``: ``{label: (x, gap_ratio)}`` with ``x = 4 eta lambda t``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (label, (x, g)) in enumerate(curves.items()):
        ax.plot(x, g, "-", color=f"C{i % 10}", lw=0.8, label=label)
    xs = np.linspace(0, 6, 100)
    ax.plot(xs, np.exp(-xs), "k--", lw=1.2, label="exp(−4ηλt)")
    ax.set(
        yscale="log",
        ylim=(1e-2, 2),
        xlim=(0, 6),
        xlabel="4 η λ t",
        ylabel="(E r⁴ − r⁴_∞) / (r₀⁴ − r⁴_∞)",
        title="Approach of the norm to equilibrium (fixed LR)",
    )
    ax.legend(fontsize=6, ncol=2)
    _no_minor_labels(fig)
    return fig
