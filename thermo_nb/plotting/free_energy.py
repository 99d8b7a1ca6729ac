"""Figures of the chapter *SGD as free-energy minimisation* (``book/free_energy.ipynb``):
one function per figure, so each figure cell is one line."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

_STEP = "SGD step"


def _pick(lrs, n=5):
    """Indices of about ``n`` learning rates spread over the grid."""
    return np.unique(np.linspace(0, len(lrs) - 1, n).round().astype(int))


def plot_toy_runs(up: dict, op: dict, up_min_loss: float, n_show: int = 5):
    """Sphere toy: UP loss above its minimum, OP loss, SNR and gradient norms against
    the step for a few learning rates (replica 0; medians over replicas for the SNR)."""
    fig, ax = plt.subplots(1, 4, figsize=(15, 3.4))
    cmap = plt.get_cmap("viridis")
    for j, i in enumerate(_pick(up["lrs"], n_show)):
        c = cmap(j / max(n_show - 1, 1))
        lab = f"η = {up['lrs'][i]:.2g}"
        ax[0].loglog(
            up["steps"], up["loss_mean"][:, i] - up_min_loss, color=c, label=lab
        )
        ax[1].loglog(op["steps"], op["loss_mean"][:, i], color=c, label=lab)
        ax[2].semilogx(up["steps"], up["snr_median"][:, i], color=c)
        ax[2].semilogx(op["steps"], op["snr_median"][:, i], "--", color=c)
        ax[3].loglog(op["steps"], op["full_grad_traj"][:, i], color=c)
        ax[3].loglog(op["steps"], op["stoch_grad_traj"][:, i], ":", color=c)
    ax[0].set(xlabel=_STEP, ylabel="U − L_min (nats)", title="UP toy: loss plateaus")
    ax[1].set(xlabel=_STEP, ylabel="U (nats)", title="OP toy: loss → 0 at small η",
              ylim=(1e-16, 2))  # fmt: skip
    ax[3].set_ylim(1e-10, 10)
    ax[2].set(xlabel=_STEP, ylabel="SNR", title="SNR: UP (solid), OP (dashed)")
    ax[3].set(
        xlabel=_STEP, ylabel="gradient norm", title="OP: |g| (solid), E|g_i| (dots)"
    )
    ax[0].legend(fontsize=7)
    return fig


def plot_u_s(stats: dict, refs: dict):
    """U(η) and the entropy per dimension relative to the uniform sphere,
    (S − S_uniform)/d, of each data set (uniform-sphere loss dashed); points that fail
    the stationarity gate are hollow."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    for j, (name, st) in enumerate(stats.items()):
        c = f"C{j}"
        g = np.asarray(st["gate"], bool)
        ref = refs.get(name, {})
        d = ref.get("dim", 1)
        s0 = ref.get("S", 0.0)
        ys = {"U": (st["U"], st["se_U"]), "S": ((st["S"] - s0) / d, st["se_S"] / d)}
        for a, key in ((ax[0], "U"), (ax[1], "S")):
            y, e = ys[key]
            a.errorbar(st["lrs"], y, yerr=e, color=c, lw=1, label=name)
            a.plot(st["lrs"][~g], y[~g], "o", mfc="white", color=c)
            a.plot(st["lrs"][g], y[g], "o", color=c, ms=4)
        if ref.get("U") is not None:
            ax[0].axhline(ref["U"], color=c, ls="--", lw=0.8)
    ax[1].axhline(0.0, color="0.3", ls="--", lw=0.8)
    ax[0].set(xscale="log", xlabel="learning rate η", ylabel="U (nats)",
              title="stationary loss (dashed: random weights)")  # fmt: skip
    ax[1].set(xscale="log", xlabel="learning rate η",
              ylabel="(S − S_uniform) / d (nats)",
              title="window entropy per dimension (0: uniform sphere)")  # fmt: skip
    ax[0].legend(fontsize=8)
    return fig


def plot_temperatures(analyses: dict, title: str = "T(η) by the interval method"):
    """T(η) with its interval band and the fitted power law (dashed) per data set."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for j, (name, a) in enumerate(analyses.items()):
        if a.get("temperature") is None:
            continue
        c = f"C{j}"
        ok = a["consistent"]
        ax.fill_between(a["lrs"], np.where(ok, a["t_low"], np.nan),
                        np.where(ok, a["t_high"], np.nan), color=c, alpha=0.2)  # fmt: skip
        ax.plot(a["lrs"], a["temperature"], "o-", color=c, ms=4, label=name)
        f = a.get("fit")
        if f is not None:
            ax.plot(a["lrs"], f["prefactor"] * a["lrs"] ** f["slope"], "--", color=c,
                    lw=1, label=f"{name}: T ∝ η^{f['slope']:.2f}")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="learning rate η", ylabel="T (nats)",
           title=title)  # fmt: skip
    ax.legend(fontsize=7)
    return fig


def plot_free_energy(analysis: dict, n_curves: int = 4, name: str = ""):
    """Free-energy curves F_T(η) = U − T S for a few inferred temperatures, each with its
    minimum (star): it should sit at the learning rate whose temperature is T."""
    from ..estimators.temperature import free_energy_curves

    fig, ax = plt.subplots(figsize=(6, 3.8))
    if analysis.get("consistent") is None:
        ax.set_title(f"free-energy curves {name}: too few stationary points")
        return fig
    ok = np.flatnonzero(analysis["consistent"])[1:-1]
    pick = ok[_pick(ok, n_curves)] if ok.size else ok
    temps = analysis["temperature"][pick]
    F = free_energy_curves(analysis["U"], analysis["S"], temps)
    for j, (T, f) in enumerate(zip(temps, F)):
        f = f - f.min()
        ax.plot(analysis["lrs"], f, color=f"C{j}", label=f"T = {T:.2g}")
        k = int(np.argmin(f))
        ax.plot(analysis["lrs"][k], f[k], "*", ms=12, color=f"C{j}", mec="k")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set(xscale="log", xlabel="learning rate η", ylabel="F_T − min F_T (nats)",
           title=f"free-energy curves {name}")  # fmt: skip
    ax.legend(fontsize=7)
    return fig


def plot_op_collapse(net_op: dict, traj: dict):
    """OP network at its smallest learning rates: loss and entropy keep falling, and the
    trajectory temperature T(t) = dU/dS falls with them."""
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.5))
    steps = net_op["steps"]
    for j, eta in enumerate(traj["lrs"]):
        i = int(np.flatnonzero(net_op["lrs"] == eta)[0])
        ax[0].loglog(steps, net_op["loss"][:, i], "o-", ms=3, label=f"η = {eta:.2g}")
        ax[1].semilogx(steps, net_op["entropy"][:, i], "o-", ms=3)
        ax[2].loglog(steps, np.where(traj["T"][:, j] > 0, traj["T"][:, j], np.nan),
                     "o-", ms=3)  # fmt: skip
    f = traj["traj_fit"]
    if f is not None:
        ax[2].plot(steps, f["prefactor"] * steps.astype(float) ** f["slope"], "k--",
                   lw=1, label=f"T ∝ t^{f['slope']:.2f}")  # fmt: skip
        ax[2].legend(fontsize=8)
    for a in ax:
        a.set_xlim(steps[0], steps[-1])
    ax[0].set(xlabel=_STEP, ylabel="U (nats)", title="OP: loss")
    ax[1].set(xlabel=_STEP, ylabel="S (nats, + const)", title="OP: window entropy")
    ax[2].set(xlabel=_STEP, ylabel="T = dU/dS", title="OP: trajectory temperature")
    ax[0].legend(fontsize=8)
    return fig


def plot_gradient_noise(net_up: dict, net_op: dict, traj: dict):
    """SNR along training (UP and OP, a few learning rates) and the OP phase plot
    E|g_i| against |g| with the fitted power law."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    for j, (net, ls) in enumerate(((net_up, "-"), (net_op, "--"))):
        for k, i in enumerate(_pick(net["lrs"], 3)):
            ax[0].loglog(net["steps"], net["snr"][:, i], ls, color=f"C{k}",
                         label=f"{'UP' if j == 0 else 'OP'} η = {net['lrs'][i]:.2g}")  # fmt: skip
    for eta in traj["lrs"]:
        i = int(np.flatnonzero(net_op["lrs"] == eta)[0])
        ax[1].loglog(net_op["full_grad_norm"][:, i], net_op["stoch_grad_mean_norm"][:, i],
                     "o", ms=3, label=f"η = {eta:.2g}")  # fmt: skip
    f = traj["grad_fit"]
    if f is not None:
        g = np.geomspace(np.nanmin(net_op["full_grad_norm"]),
                         np.nanmax(net_op["full_grad_norm"]), 20)  # fmt: skip
        ax[1].plot(g, f["prefactor"] * g ** f["slope"], "k--", lw=1,
                   label=f"E|g_i| ∝ |g|^{f['slope']:.2f}")  # fmt: skip
    ax[0].set(xlabel=_STEP, ylabel="SNR", title="SNR = |g| / rms(g_i − g)")
    ax[1].set(xlabel="|g| (full gradient)", ylabel="E|g_i| (minibatch)",
              title="OP network: gradient norms")  # fmt: skip
    ax[0].legend(fontsize=6, ncol=2)
    ax[1].legend(fontsize=7)
    return fig


def plot_lr_over_batch(analyses: dict, title: str):
    """T against η and against η/B for several batch sizes: one curve if T = T(η/B)."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    for j, (b, a) in enumerate(analyses.items()):
        if a.get("temperature") is None:
            continue
        ok = a["consistent"]
        for k, x in enumerate((a["lrs"], a["lrs"] / b)):
            ax[k].loglog(x[ok], a["temperature"][ok], "o-", ms=3, color=f"C{j}",
                         label=f"B = {b}")  # fmt: skip
    ax[0].set(xlabel="learning rate η", ylabel="T (nats)", title=f"{title}: T vs η")
    ax[1].set(xlabel="η / B", ylabel="T (nats)", title=f"{title}: T vs η/B")
    ax[0].legend(fontsize=8)
    return fig
