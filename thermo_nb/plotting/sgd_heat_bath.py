"""Figures of the chapter *SGD noise as a heat bath* (``book/sgd_heat_bath.ipynb``): Parsi's
Fig. 5.1 panels (a)-(d) and the figures that go beyond it.  Each takes the dictionaries
returned by :func:`thermo_nb.estimators.noise_statistics.record_sgd_noise` (one per batch
size, keyed by ``B``) and returns the matplotlib figure."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _ok(res):
    return ~res["diverged"]


def fig_5_1(runs: dict, control: "dict | None" = None, control_theory=None):
    """Parsi's Fig. 5.1: (a) one last-layer weight, four replicas per batch size; (b) mean
    and spread of test accuracy; (c) noise variance averaged over parameters, with
    max |grad U_B| dashed; (d) autocorrelation of eta against lag with the white-noise
    band (and the epoch-shuffling control, if given)."""
    plt = _plt()
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    for j, (b, r) in enumerate(runs.items()):
        c, ok, s = f"C{j}", _ok(r), np.maximum(r["steps"], 1)
        tracked = r["tracked"][:, ok, 0]
        for k in range(min(4, tracked.shape[1])):
            ax[0, 0].plot(
                s,
                tracked[:, k],
                color=c,
                lw=0.9,
                label=f"|b| = {b}" if k == 0 else None,
            )
        acc = r["accuracy"][:, ok]
        m, sd = acc.mean(1), acc.std(1)
        ax[0, 1].plot(s, m, color=c, label=f"|b| = {b}")
        ax[0, 1].fill_between(s, m - sd, m + sd, color=c, alpha=0.25)
        ax[1, 0].plot(s, r["noise_var"][:, ok].mean(1), color=c, label=f"|b| = {b}")
        ax[1, 0].axhline(r["grad_max"][:, ok].max(), color=c, ls="--", lw=0.9)
        a = r["autocorr"]
        ax[1, 1].plot(a["lags"], a["rho"], "o-", ms=3, color=c, label=f"|b| = {b}")
        if "band" in a:
            ax[1, 1].fill_between(a["lags"][1:], *a["band"][:, 1:], color=c, alpha=0.15)
    if control is not None:
        a = control["autocorr"]
        lab = f"|b| = {control['batch_size']}, epoch shuffling"
        ax[1, 1].plot(a["lags"], a["rho"], "s--", ms=3, color="0.3", label=lab)
        if control_theory is not None:
            ax[1, 1].plot(
                a["lags"][1:],
                control_theory[1:],
                "k:",
                lw=1,
                label="−(1−τ/n_b)/(n_b−1)",
            )
    ax[0, 0].set(
        xscale="log",
        xlabel="SGD step t",
        ylabel="θ_i (one last-layer weight)",
        title="(a) parameter trajectories",
    )
    ax[0, 1].set(
        xscale="log",
        xlabel="SGD step t",
        ylabel="test accuracy",
        title="(b) accuracy: mean ± std over replicas",
    )
    ax[1, 0].set(
        xscale="log",
        yscale="log",
        xlabel="SGD step t",
        ylabel="(1/P) Σ_i ⟨η_i²⟩ (nats²/param²)",
        title="(c) noise variance; dashed: max |∂_i U_B|",
    )
    ax[1, 1].set(
        xlabel="lag τ (steps)",
        ylabel="ρ(τ)",
        title="(d) autocorrelation of η (shaded: 99 % white-noise band)",
    )
    ax[1, 1].set_ylim(-0.15, 0.15)
    for a_ in ax.flat:
        a_.legend(fontsize=7)
    return fig


def fig_batch_and_temperature(runs: dict, sweep_points: list, fits: dict):
    """Left: noise variance over the late window against batch size (log-log) with the
    fitted exponent and the 1/B law; also B <eta^2> against tr(Sigma)/P at each run's
    final parameters.  Right: implied temperature r<eta^2>/2 against r/B."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    bs = np.array(list(runs))
    v = np.array(
        [
            r["noise_var"][np.isin(r["steps"], r["window"])][:, _ok(r)].mean()
            for r in runs.values()
        ]
    )
    ax[0].loglog(bs, v, "o", label="⟨η²⟩ over the late window")
    ax[0].loglog(
        bs, v[0] * (bs / bs[0]) ** -1.0, "k:", lw=1, label="1/B from the smallest B"
    )
    ax[0].loglog(
        bs,
        np.exp(fits["variance"]["intercept"]) * bs ** fits["variance"]["slope"],
        "C0--",
        lw=1,
        label=f"fit: slope {fits['variance']['slope']:.2f}",
    )
    trs = [
        r["probe"]["trace_sigma"].mean() / r["n_params"]
        for r in runs.values()
        if "probe" in r
    ]
    if len(trs) == len(bs):
        ax[0].loglog(
            bs,
            np.array(trs) / bs,
            "C3x",
            ms=8,
            label="tr Σ(θ_end)/(P B) (per-example gradients)",
        )
    ax[0].set(
        xlabel="batch size B",
        ylabel="(1/P) Σ_i ⟨η_i²⟩",
        title="Noise width against batch size",
    )
    ax[0].legend(fontsize=7)
    x = np.array([p["lr"] / p["B"] for p in sweep_points])
    t = np.array([np.mean(p["T"]) for p in sweep_points])
    for p in sweep_points:
        ax[1].loglog(
            p["lr"] / p["B"],
            np.mean(p["T"]),
            "o" if p["kind"] == "batch" else "s",
            color="C0" if p["kind"] == "batch" else "C1",
        )
    ax[1].plot([], [], "o", color="C0", label="batch sizes at the base lr")
    ax[1].plot([], [], "s", color="C1", label="lr sweep at the middle batch size")
    xx = np.geomspace(x.min(), x.max(), 10)
    ax[1].loglog(
        xx,
        np.exp(fits["temperature"]["intercept"]) * xx ** fits["temperature"]["slope"],
        "k--",
        lw=1,
        label=f"fit: slope {fits['temperature']['slope']:.2f}",
    )
    ax[1].loglog(xx, t[np.argmin(x)] * xx / x.min(), "k:", lw=1, label="∝ lr/B")
    ax[1].set(
        xlabel="lr / B",
        ylabel="k_B T = r⟨η_i²⟩/2 (nats per step)",
        title="Implied temperature (Parsi sec. 5.1)",
    )
    ax[1].legend(fontsize=7)
    return fig


def fig_layers_and_forces(runs: dict, layer_t: dict):
    """Left: implied temperature per layer for each batch size.  Right: ratio of
    deterministic to random force power, |grad U_B|^2 / <|eta|^2>, against step."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for j, (b, r) in enumerate(runs.items()):
        temps = layer_t[b]
        labels = list(temps)
        ax[0].semilogy(
            range(1, len(labels) + 1),
            [temps[k].mean() for k in labels],
            "o-",
            color=f"C{j}",
            label=f"|b| = {b}",
        )
        ok = _ok(r)
        ratio = r["grad_norm2"][:, ok].mean(1) / (
            r["n_params"] * r["noise_var"][:, ok].mean(1)
        )
        ax[1].loglog(
            np.maximum(r["steps"], 1), ratio, color=f"C{j}", label=f"|b| = {b}"
        )
    ax[0].set(
        xlabel="layer (input → output)",
        ylabel="k_B T_layer = r⟨η_i²⟩_layer/2",
        title="Layer temperatures",
    )
    ax[0].set_xticks(range(1, len(labels) + 1))
    ax[1].axhline(1, color="k", lw=0.8)
    ax[1].set(
        xlabel="SGD step t",
        ylabel="|∇U_B|² / ⟨|η|²⟩",
        title="Deterministic vs random force (power ratio)",
    )
    for a_ in ax:
        a_.legend(fontsize=7)
    return fig


def fig_low_variance(runs: dict):
    """Relative spread across replicas (std / |mean|) of test accuracy, test loss and the
    conditional L-info, against step, per batch size (Parsi's Eq. 24 proxy error)."""
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    names = {
        "accuracy": "test accuracy",
        "loss": "test loss",
        "info": "conditional L-info",
    }
    for j, (b, r) in enumerate(runs.items()):
        ok, s = _ok(r), np.maximum(r["steps"], 1)
        for a_, key in zip(ax, names):
            v = r[key][:, ok]
            a_.loglog(
                s,
                v.std(1, ddof=1) / np.abs(v.mean(1)),
                color=f"C{j}",
                label=f"|b| = {b}",
            )
    for a_, name in zip(ax, names.values()):
        a_.set(xlabel="SGD step t", ylabel="std / |mean| across replicas", title=name)
        a_.legend(fontsize=7)
    return fig
