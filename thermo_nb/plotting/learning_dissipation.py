"""Figure helpers of the chapter *Learning as heat dissipation* (one call per figure)."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_ebm_fit(mlp: dict, replica: int = 0):
    """Data, chains and learned density of one replica; exact test NLL vs update."""
    plt = _plt()
    ax_ = mlp["grid_axis"]
    n = ax_.size
    fig, ax = plt.subplots(1, 4, figsize=(15, 3.6))
    ext = (ax_[0], ax_[-1], ax_[0], ax_[-1])
    ax[0].imshow(np.exp(mlp["log_target"]).reshape(n, n).T, origin="lower", extent=ext)
    ax[0].set(title="target p*(x)", xlabel="x1", ylabel="x2")
    ax[1].imshow(
        np.exp(mlp["log_p_final"][replica]).reshape(n, n).T, origin="lower", extent=ext
    )
    ax[1].set(title=f"learned p(x|θ_n), replica {replica}", xlabel="x1")
    d, c = mlp["data"], mlp["chains"][replica]
    ax[2].scatter(d[:, 0], d[:, 1], s=2, alpha=0.3, label="training data")
    ax[2].scatter(c[:, 0], c[:, 1], s=2, alpha=0.6, label="persistent chains")
    ax[2].set(
        xlim=ext[:2], ylim=ext[2:], title="data and negative samples", xlabel="x1"
    )
    ax[2].legend(fontsize=7, loc="upper right")
    t = np.arange(mlp["nll"].shape[0])
    ax[3].plot(t, mlp["nll"], lw=0.7, alpha=0.6)
    ax[3].axhline(mlp["data_entropy"], color="k", ls="--", label="data entropy H(p*)")
    ax[3].set(
        xlabel="update t",
        ylabel="exact test NLL (nats)",
        title="learning curve",
        ylim=(mlp["data_entropy"] - 0.2, mlp["nll"].max() + 0.1),
    )
    ax[3].legend(fontsize=8)

    return fig


def plot_work_heat(mlp: dict):
    """Cumulative work and heat (Eqs. 51-52): exact vs from the chains; first law."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(12, 3.6))
    t = np.arange(1, mlp["work_exact"].shape[0] + 1)
    for key, lab, st in (
        ("work_exact", "W_X exact (Eq. 51)", "-"),
        ("heat_exact", "Q_X exact (Eq. 52)", "-"),
        ("heat_samples", "Q_X from chains", "--"),
    ):
        y = np.cumsum(mlp[key], 0).mean(1)
        ax[0].plot(t, y, st, label=lab)
    du = (mlp["cond_entropy"] - mlp["cond_entropy"][0]).mean(1)[1:]
    ax[0].plot(t, du, ":", color="k", label="ΔU = Δ<φ> (exact)")
    ax[0].set(
        xlabel="update t", ylabel="nats (ensemble mean)", title="Work and heat on X"
    )
    ax[0].legend(fontsize=8)
    dq = np.cumsum(mlp["heat_samples"] - mlp["heat_exact"], 0)
    ax[1].plot(t, dq, lw=0.7)
    ax[1].set(
        xlabel="update t",
        ylabel="Q_chains - Q_exact (nats)",
        title="Heat: chains minus quadrature, per replica",
    )

    return fig


def plot_eq44(mlp: dict):
    """Eq. 44 along training: Delta I vs Sigma_X - Sigma_{X|Theta}, and the terms."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(12, 3.6))
    q = np.cumsum(mlp["heat_exact"], 0)
    w = np.cumsum(mlp["work_exact"], 0)
    dsx = mlp["marg_entropy"][1:] - mlp["marg_entropy"][0]
    di = mlp["l_info"][1:] - mlp["l_info"][0]
    t = np.arange(1, q.shape[0] + 1)
    ax[0].plot(t, di.mean(1), label="ΔI_X;Θ(θ_t) (Eq. 25)")
    ax[0].plot(t, (dsx - q - w).mean(1), "--", label="Σ_X − Σ_X|Θ (Eq. 44)")
    ax[0].plot(t, mlp["l_info"][1:].mean(1), ":", label="ensemble L-info I_X;Θ(t)")
    ax[0].set(xlabel="update t", ylabel="nats", title="L-info and ignorance EP")
    ax[0].legend(fontsize=8)
    ax[1].plot(t, (dsx - q).mean(1), label="Σ_X (marginal EP)")
    ax[1].plot(t, w.mean(1), label="Σ_X|Θ (conditional EP)")
    ax[1].plot(t, -q.mean(1), label="−Q_X")
    ax[1].set(xlabel="update t", ylabel="nats (ensemble mean)", title="Terms of Eq. 44")
    ax[1].legend(fontsize=8)

    return fig


def plot_clausius(series: dict, closed_form_ds: "float | None" = None, ax=None):
    """-Q_X(t) against Delta S[Theta](t) for the Gaussian EBM ensemble (Eq. 49)."""
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    else:
        fig = ax.figure
    t = series["t"]
    ax.plot(t, series["neg_q"], label="−Q_X (exact, ensemble mean)")
    ax.fill_between(
        t,
        series["neg_q"] - 3 * series["neg_q_se"],
        series["neg_q"] + 3 * series["neg_q_se"],
        alpha=0.3,
    )
    ax.plot(t, series["delta_s"], label="ΔS[Θ] (k-NN)")
    if closed_form_ds is not None:
        ax.axhline(
            closed_form_ds,
            ls=":",
            color="k",
            label="ΔS[Θ] stationary, closed form (mean over training sets)",
        )
    ax.set(xlabel="update t", ylabel="nats", title="Clausius relation, Gaussian EBM")
    ax.legend(fontsize=8)
    return fig


def plot_tau_tradeoff(taus, cond_ep, cond_ep_se, floor, l_info, probe=None):
    """Conditional EP and L-info against the sampler budget tau (Carnot-like trade-off)."""
    plt = _plt()
    n = 3 if probe is not None else 2
    fig, ax = plt.subplots(1, n, figsize=(5 * n, 3.6))
    taus = np.asarray(taus)
    ax[0].errorbar(
        taus,
        cond_ep,
        3 * np.asarray(cond_ep_se),
        marker="o",
        label="Σ_X|Θ, exact (probe law)",
    )
    ax[0].axhline(floor, ls="--", color="k", label="τ→∞ value −Q_X = Σ KL(p_i-1‖p_i)")
    ax[0].axhline(0, color="grey", lw=0.6)
    ax[0].set(
        xscale="log",
        xlabel="τ (sampler steps per update = compute cost)",
        ylabel="nats",
        title="Gaussian EBM: conditional EP",
    )
    ax[0].legend(fontsize=8)
    ax[1].plot(taus, l_info, marker="o")
    ax[1].set(
        xscale="log",
        xlabel="τ",
        ylabel="I(X;Θ) (nats)",
        title="Gaussian EBM: stationary L-info",
    )
    if probe is not None:
        pt, wd, se, ideal = probe
        ax[2].errorbar(pt, wd, 3 * np.asarray(se), marker="o", label="<W> − ΔF, probes")
        ax[2].axhline(ideal, ls="--", color="k", label="Σ KL(p_i-1‖p_i), quadrature")
        ax[2].set(
            xscale="log",
            xlabel="τ of the probe chains",
            ylabel="nats",
            title="MLP EBM: dissipated work",
        )
        ax[2].legend(fontsize=8)

    return fig


def plot_laziness(mlp: dict):
    """Relative gradient change across one update (0 = reversible, lazy)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(mlp["lazy_t"], mlp["lazy"], lw=0.7, alpha=0.7)
    ax.set(
        yscale="log",
        xlabel="update t",
        ylabel="|g(θ_t+1) − g(θ_t)| / |g(θ_t)|",
        title="Irreversibility of one update (MLP EBM)",
    )
    return fig
