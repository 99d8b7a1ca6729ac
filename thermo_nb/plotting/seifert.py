"""Figures of the chapter *Entropy production and the fluctuation theorem for Langevin
dynamics and SGD* (``book/seifert.ipynb``). Each function draws one figure of the chapter
and returns it; the chapter's figure cells are one call each."""

from __future__ import annotations

import numpy as np


def _subplots(n: int, width: float = 13.0, height: float = 3.6):
    import matplotlib.pyplot as plt

    return plt.subplots(1, n, figsize=(width, height))


def plot_langevin_benchmarks(bench: dict, coarse_edges: np.ndarray):
    """Tilted double well: Fokker-Planck density against the simulated histogram;
    distributions of the total entropy production; running IFT averages.

    Parameters
    ----------
    bench : dict
        The chapter's benchmark results (``trap``, ``ou``, ``ou_heavy``, ``double_well``),
        each with the per-trajectory ``total`` entropy production (nats); the double well
        also carries its Fokker-Planck solution ``fp`` and final positions ``x_final``.
    coarse_edges : array
        Histogram bin edges for the simulated final positions.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fp, xf = bench["double_well"]["fp"], bench["double_well"]["x_final"]
    fig, ax = _subplots(3)
    for t_i in (0, len(fp.t) // 2, -1):
        ax[0].plot(fp.x, fp.p[t_i], label=f"FP, t = {fp.t[t_i]:.1f}")
    ax[0].hist(
        xf,
        coarse_edges,
        density=True,
        alpha=0.35,
        color="C2",
        label=f"simulated, t = {fp.t[-1]:.1f}",
    )
    ax[0].set(
        xlim=(-2.5, 3),
        xlabel="x (length units)",
        ylabel="p(x, t) (1/length)",
        title="Tilted double well",
    )
    ax[0].legend(fontsize=8)
    for name in ("trap", "ou", "double_well", "ou_heavy"):
        ax[1].hist(bench[name]["total"], 120, density=True, histtype="step", label=name)
    ax[1].set(
        xlabel="Δs_tot (nats)",
        ylabel="density (1/nat)",
        title="Distribution of Δs_tot",
        xlim=(-6, 12),
    )
    ax[1].legend(fontsize=8)
    for name in ("ou", "ou_heavy"):
        w = np.exp(-bench[name]["total"])
        n = np.arange(1, w.size + 1)
        ax[2].plot(n, np.cumsum(w) / n, label=name)
    ax[2].axhline(1, color="k", lw=0.8)
    ax[2].set(
        xscale="log",
        xlabel="trajectories N",
        ylabel="running mean of e^(-Δs_tot)",
        title="IFT convergence",
    )
    ax[2].legend(fontsize=8)
    return fig


def plot_probability_currents(quad: dict):
    """Stationary density (contours) and probability current (arrows) of SGD on the two
    quadratic losses, currents scaled by the largest relaxation flux ``|eta H theta| p``.

    Parameters
    ----------
    quad : dict
        ``{name: case}`` with ``H``, ``Q``, ``C`` (stationary covariance), ``lr`` and
        ``ep_step`` (exact entropy production per step, nats).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..dynamics.sgd_linear import linear_sde_probability_current

    fig, ax = _subplots(len(quad), width=11.0, height=4.8)
    for a, (name, c) in zip(ax, quad.items()):
        s = 3 * np.sqrt(np.diag(c["C"]).max())
        g1, g2 = np.meshgrid(np.linspace(-s, s, 25), np.linspace(-s, s, 25))
        pts = np.column_stack([g1.ravel(), g2.ravel()])
        drift = c["lr"] * c["H"]
        p, j = linear_sde_probability_current(drift, c["Q"] / 2, pts)
        # |eta H theta| p: the relaxation flux, the same dimensionless scale in both panels
        drift_flux = np.linalg.norm(pts @ drift.T, axis=1) * p
        jr = j / drift_flux.max()
        a.contour(g1, g2, p.reshape(g1.shape), 6, colors="0.6", linewidths=0.8)
        a.quiver(
            g1,
            g2,
            jr[:, 0].reshape(g1.shape),
            jr[:, 1].reshape(g1.shape),
            color="C3",
            scale=1.5,
            scale_units="width",
        )
        a.set(
            xlabel="θ₁ − θ₁* (weight units)",
            ylabel="θ₂ − θ₂*",
            title=f"{name}\nσ = {c['ep_step']:.2g} nats/step, "
            f"max |j| / drift flux = {np.abs(jr).max():.2f}",
        )
    return fig


def plot_sgd_entropy(run: dict, ep_sgd: dict, ok: np.ndarray):
    """Training loss, ensemble-mean system/medium/total entropy along training, and the
    distribution of the total entropy production over SGD replicas.

    Parameters
    ----------
    run : dict
        Recorded ensemble trajectory (``steps``, ``loss`` of shape (K, M)).
    ep_sgd : dict
        :func:`thermo_nb.subspace_entropy_production` result (``s_sys_path``,
        ``s_medium_path``, ``delta_s_tot``).
    ok : bool array (M,)
        Replicas that did not diverge.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _subplots(3)
    steps = run["steps"]
    ax[0].plot(steps, run["loss"][:, ok].mean(1))
    ax[0].set(
        yscale="log", xlabel="SGD step", ylabel="training loss (nats)", title="Loss"
    )
    s_sys = ep_sgd["s_sys_path"] - ep_sgd["s_sys_path"][0]
    s_med = ep_sgd["s_medium_path"] - ep_sgd["s_medium_path"][0]
    ax[1].plot(steps, s_sys.mean(1), label="Δs (system)")
    ax[1].plot(steps, s_med.mean(1), label="Δs_m (medium)")
    total = s_sys + ep_sgd["s_medium_path"]
    ax[1].plot(steps, total.mean(1), "k", label="Δs_tot")
    ax[1].set(
        xlabel="SGD step", ylabel="ensemble mean (nats)", title="Entropy along training"
    )
    ax[1].legend(fontsize=8)
    ax[2].hist(ep_sgd["delta_s_tot"], 30, density=True)
    ax[2].set(xlabel="Δs_tot (nats)", ylabel="density (1/nat)", title="SGD replicas")
    return fig


def plot_distance_growth(fq: dict, pred: np.ndarray, fits_q: dict, net: dict):
    """Distance from initialisation: the quadratic with flat directions (simulated,
    exact and the three fitted growth laws), free diffusion against the entropy
    prediction, and the MLP with laws fitted per regime.

    Parameters
    ----------
    fq : dict
        Flat-quadratic run: ``steps``, ``R`` (K, M), ``ER2`` (exact E R^2), ``dS``,
        ``Rf2``.
    pred : array
        ``d_f s0^2 (e^(2 dS/d_f) - 1)`` at the recorded steps.
    fits_q : dict
        Growth-law fits of the quadratic (:func:`thermo_nb.fit_growth_laws`).
    net : dict
        MLP run: ``steps``, ``R`` (K, M), ``regimes`` ``{label: slice}``, ``fits``
        ``{label: fits}`` and ``i_conv`` (index of the first converged record).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _subplots(3)
    colours = ("C1", "C2", "C3")
    r_mean = fq["R"].mean(1)
    ax[0].loglog(fq["steps"], r_mean, "o", ms=3, label="simulated")
    ax[0].loglog(fq["steps"], np.sqrt(fq["ER2"]), "k-", lw=0.8, label="√E R² exact")
    for (law, f), col in zip(fits_q.items(), colours):
        ax[0].plot(
            fq["steps"], f.predict(fq["steps"]), "--", lw=1, color=col, label=law
        )
    ax[0].set_ylim(0.5 * r_mean.min(), 2 * r_mean.max())
    ax[0].set(
        xlabel="SGD step",
        ylabel="R (parameter units)",
        title="Quadratic with flat directions",
    )
    ax[0].legend(fontsize=7)
    ax[1].plot(fq["dS"], fq["Rf2"], "o", ms=3, label="simulated")
    ax[1].plot(fq["dS"], pred, "k-", lw=0.8, label="d_f s0² (e^(2ΔS/d_f) − 1)")
    ax[1].set(
        yscale="log",
        xlabel="⟨Δs_tot⟩ = ΔS_sys (nats)",
        ylabel="E R_f²",
        title="Free diffusion",
    )
    ax[1].legend(fontsize=7)
    sn, rn = net["steps"], net["R"].mean(1)
    ax[2].loglog(sn, rn, "o", ms=3, label="MLP")
    for label, sl in net["regimes"].items():
        for (law, f), col in zip(net["fits"][label].items(), colours):
            ax[2].plot(
                sn[sl],
                f.predict(sn[sl]),
                "--",
                lw=1,
                color=col,
                label=law if "early" in label else None,
            )
    ax[2].axvline(sn[net["i_conv"]], color="0.5", lw=0.8)
    ax[2].set(
        xlabel="SGD step", ylabel="R (parameter units)", title="MLP (fits per regime)"
    )
    ax[2].set_ylim(0.5 * rn.min(), 2 * rn.max())
    ax[2].legend(fontsize=7)
    return fig


def plot_stationary_regime(bump: dict, dft_q: dict, dft_n: dict):
    """Sec. 3b: the detailed fluctuation theorem (quadratic NESS and stationary network),
    the distance from the start in the stationary network against the seed's
    ``exp(<s_dot_tot> t / d)``, and the entropy production against the learning rate."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for d, label in (
        (dft_q, "quadratic NESS (exact)"),
        (dft_n, "network (fitted chain)"),
    ):
        ax[0].plot(d["mid"], d["log_ratio"], "o", ms=4, label=label)
    top = max(dft_q["mid"].max(), dft_n["mid"].max())
    ax[0].plot([0, top], [0, top], "k", lw=0.8, label="DFT: slope 1")
    ax[0].set(
        xlabel="s = Δs_tot (nats)",
        ylabel="ln P(s)/P(-s)",
        title="Detailed fluctuation theorem",
    )
    ax[0].legend(fontsize=8)
    wr = bump["with"]
    t, R = wr["steps"], wr["R"]
    ax[1].plot(t[1:], R[1:], label="SGLD, with replacement")
    t0 = 600
    seed_pred = R[t0] * np.exp(wr["sigma_var"] / 7 * (t[t0:] - t0))
    ax[1].plot(t[t0:], seed_pred, "--", label="seed: R ∝ exp(σ t / d)")
    ax[1].set(
        xscale="log",
        yscale="log",
        ylim=(R[1:].min() / 2, R.max() * 5),
        xlabel="SGD step",
        ylabel="mean R(t) (weight units)",
        title="Distance from the start, stationary regime",
    )
    ax[1].legend(fontsize=8)
    sw = bump["sweep"]
    for (lr, B), v in sw.items():
        ax[2].errorbar(
            lr, v["sigma"], v["sigma_se"], fmt="o", label=f"B = {B}, η = {lr}"
        )
        ax[2].plot(lr, v["sigma_theory"], "kx")
    ax[2].set(
        xlabel="learning rate η",
        ylabel="σ (nats/step); x: linear theory",
        title="Steady-state EP vs learning rate",
    )
    ax[2].legend(fontsize=8)
    return fig
