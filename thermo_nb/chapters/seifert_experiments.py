"""The experiments of the chapter *Entropy production and the fluctuation theorem for
Langevin dynamics and SGD* (``book/seifert.ipynb``): each function runs one section's
computation from the package's estimators and dynamics, so the chapter's cells stay short.

Sections: 2 (SGD on quadratic losses as a linear Gaussian chain), 3 (an MLP ensemble's
entropy production in a top-variance subspace) and 4 (distance from initialisation).
"""

from __future__ import annotations

import numpy as np


def quadratic_case(hetero: bool, rng: np.random.Generator, lr=0.1, B=8, n=4000) -> dict:
    """Linear regression in 2-D and SGD on it as the linear chain
    ``theta' = A theta + xi``, ``xi ~ N(0, Q)`` (chapter sec. 2).

    Parameters
    ----------
    hetero : bool
        Heteroscedastic label noise along ``(1, 1)/sqrt 2``, so the gradient-noise
        covariance ``Sigma`` does not commute with the Hessian ``H``.
    rng : numpy Generator
    lr, B : float, int
        Learning rate ``eta`` and batch size.
    n : int
        Training examples.

    Returns
    -------
    dict
        ``X, y, H, Sigma, theta_star, A, Q, lr, B``, the stationary covariance ``C``
        (discrete Lyapunov), the exact entropy production per step ``ep_step`` and that of
        the linear SDE approximation ``ep_sde`` (nats).
    """
    from ..dynamics import sgd_linear as sl
    from ..estimators.entropy_production import linear_sde_entropy_production_rate

    X = rng.standard_normal((n, 2)) * np.sqrt([1.0, 0.25])
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    scale = np.sqrt(0.2 + 4 * (X @ u) ** 2) if hetero else 1.0
    y = X @ np.array([1.0, -0.5]) + 0.5 * rng.standard_normal(n) * scale
    H = X.T @ X / n
    theta_star = np.linalg.solve(H, X.T @ y / n)
    Sigma = sl.linear_regression_gradient_noise_covariance(X, y, theta_star)
    A, Q = sl.sgd_quadratic_linear_process(H, Sigma, lr, B)
    return dict(
        X=X, y=y, H=H, Sigma=Sigma, theta_star=theta_star, A=A, Q=Q, lr=lr, B=B,
        C=sl.discrete_lyapunov_covariance(A, Q),
        ep_step=sl.linear_chain_entropy_production_per_step(A, Q),
        ep_sde=linear_sde_entropy_production_rate(lr * H, Q / 2),
    )  # fmt: skip


def sgd_stationary_checks(
    c: dict, seed: int, n_rep=2000, n_steps=400, burn=100
) -> dict:
    """Real minibatch SGD on a :func:`quadratic_case`, started in its stationary law:
    covariance, kernel-ratio entropy production per step (with s.e.), TUR and NEEP.

    Parameters
    ----------
    c : dict
        A :func:`quadratic_case`.
    seed : int
        The chapter's seed (the stream ``seed + 7`` is used).
    n_rep, n_steps, burn : int
        Replicas, recorded steps, discarded steps.

    Returns
    -------
    dict
        ``C_sgd`` (2, 2), ``kr`` and ``kr_se`` (nats/step), ``tur``, ``neep``.
    """
    import torch

    from ..dynamics.sgd_linear import linear_regression_sgd
    from ..estimators import entropy_production as ep

    g = np.random.default_rng(seed + 7)
    th0 = c["theta_star"] + g.multivariate_normal(np.zeros(2), c["C"], size=n_rep)
    Z = linear_regression_sgd(c["X"], c["y"], th0, c["lr"], c["B"], n_steps + burn, g)
    Z = torch.as_tensor(Z[burn:] - c["theta_star"])
    At, Qt = torch.as_tensor(c["A"].T), torch.as_tensor(c["Q"])
    pairs = torch.stack([Z[:-1], Z[1:]]).reshape(2, -1, 2)  # time-homogeneous
    sm = ep.medium_entropy_kernel_ratio(pairs, lambda x, k: x @ At, Qt)
    sm = sm.reshape(n_steps, n_rep).sum(0)
    return dict(
        C_sgd=np.cov(Z.reshape(-1, 2).numpy(), rowvar=False),
        kr=sm.mean().item() / n_steps,
        kr_se=sm.std().item() / n_rep**0.5 / n_steps,
        tur=ep.tur_entropy_production_rate(Z, 1.0),
        neep=ep.neep_entropy_production_rate(Z[::4], 4.0, n_iter=1000, seed=seed),
    )


def make_trainer(cfg, n_rep: int, seed_offset: int = 0):
    """An :class:`~thermo_nb.EnsembleTrainer` of ``n_rep`` MLPs on MNIST (``data_root``)
    or scikit-learn's digits, with the chapter's ``hidden``, ``depth``, ``lr``,
    ``batch_size`` and ``seed + seed_offset``."""
    from ..data import load_digits_tensors, load_mnist
    from ..models import MLP
    from ..training.ensemble import EnsembleTrainer

    dev = cfg.torch_device
    data = (
        load_mnist(cfg.data_root, device=dev)
        if cfg.data_root
        else load_digits_tensors(device=dev, seed=cfg.seed)
    )

    def model():
        return MLP(data.in_dim, cfg.hidden, data.n_classes, depth=cfg.depth)

    return EnsembleTrainer(
        model, n_rep, data.x_train, data.y_train, lr=cfg.lr,
        batch_size=cfg.batch_size, seed=cfg.seed + seed_offset, device=dev,
    )  # fmt: skip


def sgd_entropy_run(cfg) -> dict:
    """Sec. 3: record the ensemble's parameters and gradients during training, then a
    segment recorded every step after convergence (TUR/NEEP)."""
    from ..dynamics.sgd_entropy import record_ensemble_trajectory

    tr = make_trainer(cfg, cfg.n_replicas)
    P = tr.flat_params().shape[1]
    n_rec = cfg.n_recorded_coords
    coords = None
    if n_rec not in (0, None) and n_rec < P:
        coords = np.sort(
            np.random.default_rng(cfg.seed).choice(P, n_rec, replace=False)
        )
    common = dict(coords=coords, grad_examples=cfg.grad_examples, seed=cfg.seed)
    run = record_ensemble_trajectory(tr, cfg.n_sgd_steps, cfg.record_every, **common)
    # every coordinate of the first finite replica at the end of the run (the recorded
    # theta holds only `coords` when n_recorded_coords > 0): the isotropy probe needs it
    first_ok = (
        int(np.flatnonzero(~run["diverged"])[0]) if (~run["diverged"]).any() else 0
    )
    theta_end = tr.flat_params()[first_ok].detach().cpu().float().numpy()
    stat = record_ensemble_trajectory(
        tr, cfg.n_stationary_steps, 1, with_grad=False, desc="stationary segment",
        **common,
    )  # fmt: skip
    return {"run": run, "stationary": stat, "P": P, "theta_end": theta_end}


def distance_run(cfg) -> dict:
    """Sec. 4: the long distance-from-initialisation run, checkpointed at every record
    time (a killed run resumes)."""
    from ..dynamics.sgd_entropy import record_distance_from_init

    return record_distance_from_init(
        make_trainer(cfg, cfg.n_distance_replicas, seed_offset=1),
        cfg.n_distance_steps,
        cache=cfg.cache,
        params=dict(cfg),
    )


def flat_quadratic(
    seed: int, n_rep=1000, n_steps=20000, d=10, d_flat=5, lr=0.1, q=1e-3, s0_sq=1e-2
) -> dict:
    """Sec. 4: a quadratic with ``d_flat`` flat directions as a linear chain; distance
    from initialisation ``R``, its flat part ``R_f^2`` and the entropy change ``dS`` of
    the flat marginal, with bootstrap s.e. of the relation
    ``E R_f^2 = d_f s0^2 (e^(2 dS/d_f) - 1)``.

    Returns
    -------
    dict
        ``steps, R (K, n_rep), Rf2, dS, d_flat, s0_sq, rel_se`` and the exact
        ``ER2`` (:func:`thermo_nb.linear_chain_mean_squared_distance`).
    """
    from ..dynamics.sgd_linear import (
        linear_chain_mean_squared_distance,
        simulate_linear_chain,
    )

    a = np.r_[np.full(d - d_flat, 1 - lr), np.ones(d_flat)]
    rec = np.unique(np.round(np.geomspace(1, n_steps, 40)).astype(int))
    g = np.random.default_rng(seed + 11)
    x0 = np.sqrt(s0_sq) * g.standard_normal((n_rep, d))
    Xq = simulate_linear_chain(
        np.diag(a), q * np.eye(d), x0, n_steps, g, record_at=np.r_[0, rec]
    )
    flat = slice(d - d_flat, None)
    R = np.linalg.norm(Xq[1:] - Xq[0], axis=2)
    Rf2 = ((Xq[1:, :, flat] - Xq[0, :, flat]) ** 2).sum(2).mean(1)

    def logdet(Z):
        return np.linalg.slogdet(np.cov(Z[:, flat], rowvar=False))[1]

    dS = np.array([0.5 * (logdet(Z) - logdet(Xq[0])) for Z in Xq[1:]])

    def rel(Z0, Zs):
        out = []
        for Z in Zs:
            pred = d_flat * s0_sq * np.expm1((logdet(Z) - logdet(Z0)) / d_flat)
            out.append(pred / ((Z[:, flat] - Z0[:, flat]) ** 2).sum(1).mean() - 1)
        return np.array(out)

    resamples = (g.integers(0, n_rep, n_rep) for _ in range(100))
    boot = [rel(Xq[0][i], Xq[1:, i]) for i in resamples]
    return dict(
        steps=rec, R=R, Rf2=Rf2, dS=dS, d_flat=d_flat, s0_sq=s0_sq,
        rel_se=np.std(boot, axis=0),
        ER2=linear_chain_mean_squared_distance(a, np.full(d, q), s0_sq, rec),
    )  # fmt: skip


def growth_law_table(steps, R, label: str, seed: int):
    """Fit the three growth laws of ``R(t)`` (replicas in columns of ``R``) and tabulate
    slope, bootstrap CI, R^2, delta-AIC and AIC weight.

    Returns
    -------
    (dict, pandas.DataFrame)
        The fits (:func:`thermo_nb.fit_growth_laws`) and their table.
    """
    import pandas as pd

    from ..analysis.fits import fit_growth_laws

    fits = fit_growth_laws(
        steps, R.T, n_boot=300, generator=np.random.default_rng(seed)
    )
    rows = {
        law: {
            "slope b": f.b,
            "95% CI": f"[{f.b_ci[0]:.3g}, {f.b_ci[1]:.3g}]",
            "R² (own coords)": f.r2,
            "ΔAIC": f.extra["delta_aic"],
            "AIC weight": f.extra["aic_weight"],
        }
        for law, f in fits.items()
    }
    return fits, pd.DataFrame(rows).T.assign(data=label)


def reference_checks(bench: dict, seed: int, n: int = 20000) -> dict:
    """The exact reference checks of the test suite, as chapter rows: the dragged trap's
    ``<W>`` and ``Var W = 2 T <W>``, the ULA stationary-variance bias ``1/(1 - hk/2)`` and
    the two-bead NESS rate (kernel-ratio EP of the Euler-Maruyama chain against that
    chain's exact value and against the continuum 2.025).

    Returns
    -------
    dict of rows ``{name: (expected, measured, s.e.)}``.
    """
    import torch

    from ..dynamics import exact
    from ..dynamics.langevin import unadjusted_langevin
    from ..dynamics.sgd_linear import linear_chain_entropy_production_per_step
    from ..estimators.entropy_production import medium_entropy_kernel_ratio

    rows = {}
    W = bench["trap"]["work"]
    w_exact = bench["trap"]["expected_work"]
    rows["trap <W>"] = (w_exact, W.mean(), W.std() / W.size**0.5)
    rows["trap Var W (= 2T<W>)"] = (2 * w_exact, W.var(), W.var() * (2 / W.size) ** 0.5)
    h, k, n_steps = 0.5, 1.0, 40
    g = torch.Generator().manual_seed(seed + 21)
    x0 = torch.randn(n, 1, generator=g, dtype=torch.float64)
    X = unadjusted_langevin(lambda x, i: k * x, x0, n_steps, h, generator=g)
    v_exact = exact.ula_harmonic_moments(n_steps, 0.0, 1.0, h, k)[1]
    v = float(X[-1].var())
    rows["ULA variance, hk = 0.5 (T/k = 1)"] = (v_exact, v, v * (2 / n) ** 0.5)
    A, D = exact.two_bead_linear_system(1.0, 10.0)
    dt, steps = 0.01, 200
    Ad, Qd = np.eye(2) - A * dt, 2 * D * dt
    from ..dynamics.sgd_linear import (
        discrete_lyapunov_covariance,
        simulate_linear_chain,
    )

    gg = np.random.default_rng(seed + 23)
    C = discrete_lyapunov_covariance(Ad, Qd)
    Xb = simulate_linear_chain(
        Ad, Qd, gg.multivariate_normal(np.zeros(2), C, size=n // 4), steps, gg
    )
    pairs = torch.as_tensor(np.stack([Xb[:-1], Xb[1:]]).reshape(2, -1, 2))
    At = torch.as_tensor(Ad.T)
    sm = medium_entropy_kernel_ratio(pairs, lambda x, i: x @ At, torch.as_tensor(Qd))
    rate = sm.reshape(steps, -1).sum(0).numpy() / (steps * dt)
    chain = linear_chain_entropy_production_per_step(Ad, Qd) / dt
    rows["two-bead σ, EM chain (dt = 0.01)"] = (
        chain, rate.mean(), rate.std() / rate.size**0.5,
    )  # fmt: skip
    rows["two-bead σ, continuum (Kim et al.)"] = (
        exact.two_bead_entropy_production_rate(1.0, 10.0), chain, np.nan,
    )  # fmt: skip
    return rows


def quadratic_iff_exact(seed: int, n_pairs: int = 200, d: int = 3) -> dict:
    """The 'iff' of the quadratic NESS, exactly: closed-form sigma of the SGD linear chain
    for random commuting (shared eigenbasis) and non-commuting (independent eigenbases)
    pairs ``(H, Sigma)``.

    Returns
    -------
    dict: ``commuting`` and ``noncommuting`` arrays of sigma per step (nats).
    """
    from ..dynamics import sgd_linear as sl

    g = np.random.default_rng(seed + 31)

    def rot():
        return np.linalg.qr(g.standard_normal((d, d)))[0]

    out = {"commuting": [], "noncommuting": []}
    for _ in range(n_pairs):
        U = rot()
        H = U @ np.diag(g.uniform(0.2, 1.0, d)) @ U.T
        S_c = U @ np.diag(g.uniform(0.1, 1.0, d)) @ U.T
        V = rot()
        S_n = V @ np.diag(g.uniform(0.1, 1.0, d)) @ V.T
        for key, S in (("commuting", S_c), ("noncommuting", S_n)):
            A, Q = sl.sgd_quadratic_linear_process(H, S, 0.1, 8)
            out[key].append(sl.linear_chain_entropy_production_per_step(A, Q))
    return {k: np.array(v) for k, v in out.items()}


def detailed_ft_quadratic(c: dict, seed: int, n_traj: int, n_k: int = 100) -> dict:
    """Detailed fluctuation theorem on the quadratic NESS (Gaussian-noise chain, from the
    stationary law): ``ln[P(s)/P(-s)] = s`` for ``Delta s_tot`` over ``n_k`` steps, exact
    kernel-ratio heat and exact stationary density. Slope of a weighted fit of the
    histogram log-ratio against ``s``, with its s.e.
    """
    import torch

    from ..dynamics.sgd_linear import simulate_linear_chain
    from ..estimators.entropy_production import medium_entropy_kernel_ratio

    g = np.random.default_rng(seed + 41)
    C = c["C"]
    X = simulate_linear_chain(
        c["A"], c["Q"], g.multivariate_normal(np.zeros(2), C, size=n_traj), n_k, g
    )
    pairs = torch.as_tensor(np.stack([X[:-1], X[1:]]).reshape(2, -1, 2))
    At = torch.as_tensor(c["A"].T)
    sm = medium_entropy_kernel_ratio(
        pairs, lambda x, i: x @ At, torch.as_tensor(c["Q"])
    )
    sm = sm.reshape(n_k, -1).sum(0).numpy()
    Ci = np.linalg.inv(C)
    ds = 0.5 * (
        np.einsum("ni,ij,nj->n", X[-1], Ci, X[-1])
        - np.einsum("ni,ij,nj->n", X[0], Ci, X[0])
    )  # ln p(x_0) - ln p(x_n), same stationary Gaussian
    return detailed_ft_slope(sm + ds)


def detailed_ft_slope(s, n_bins: int = 15) -> dict:
    """Slope of ``ln[P(s)/P(-s)]`` against ``s`` (the detailed FT predicts 1): histogram
    counts of ``s`` and ``-s`` on ``n_bins`` bins of ``[0, q_0.995(|s|)]``, bins with
    more than 5 counts on both sides, a fit through the origin weighted by the inverse
    Poisson variance ``1/(1/n_+ + 1/n_-)`` of each log-ratio; s.e. from those weights.

    Returns
    -------
    dict: ``s``, ``mid``, ``log_ratio``, ``slope``, ``slope_se``, ``mean``.
    """
    s = np.asarray(s, dtype=float).ravel()
    edges = np.linspace(0, np.quantile(np.abs(s), 0.995), n_bins + 1)
    cp, _ = np.histogram(s, edges)
    cm, _ = np.histogram(-s, edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    ok = (cp > 5) & (cm > 5)
    y = np.log(cp[ok] / cm[ok])
    w = 1 / (1 / cp[ok] + 1 / cm[ok])
    x1 = mid[ok]
    slope = float((w * x1 * y).sum() / (w * x1**2).sum())
    se = float(((w * x1**2).sum()) ** -0.5)
    return dict(s=s, mid=x1, log_ratio=y, slope=slope, slope_se=se, mean=s.mean())


def stationary_bump_net(
    seed: int,
    n_rep: int,
    lr: float = 0.5,
    batch_size: int = 10,
    weight_decay: float = 1e-2,
    temperature: float = 1e-5,
    n_burn: int = 600,
    n_rec: int = 3000,
    sweep=((0.25, 10), (0.5, 40), (0.5, 10)),
) -> dict:
    """Sec. 3b: the 7-weight regression network of Adhikari et al. (2023) with weight
    decay, started at its loss minimum, trained by SGLD at a fixed temperature with
    minibatches drawn with replacement (``"with"``) and without (``"without"``: SGWORLD).

    Returns
    -------
    dict: ``wmin, H, Sigma`` (per-example gradient covariance at the minimum), ``Q``
    (noise covariance per step, with replacement), the exact linear-chain prediction at
    the minimum (``C_theory``, ``sigma_theory`` per step, ``sigma_current_theory``: the
    current formula on the chain's own Omega and C), and per scheme the stationarity
    ``gate``, covariance ``C``, per-epoch EP of the fitted chain ``sigma_epoch`` (+ s.e.);
    for ``"with"`` also the per-step estimates ``sigma_var``, ``sigma_current`` (+ s.e.),
    the per-step stochastic EP ``s1`` (for the IFT and DFT), ``R`` and the ``ln R``
    slope; ``sweep``: ``(lr, B) -> sigma, slope`` with s.e.
    """
    from ..dynamics import sgd_linear as sl
    from ..dynamics import sgd_stationary as ss
    from ..estimators import stationary_state as st

    x, y = ss.gaussian_bump_data(seed)
    wmin = ss.bump_net_minimum(
        np.random.default_rng(seed + 51).standard_normal(7), x, y, weight_decay
    )
    H = ss.bump_net_hessian(wmin, x, y, weight_decay)
    G = ss.bump_net_per_example_gradients(wmin, x, y, weight_decay)[0]
    nb = len(x) // batch_size
    g = np.random.default_rng(seed + 53)

    def q_of(lr_, B_):
        Q_ = lr_**2 * ss.minibatch_noise_covariance(G, B_)
        return Q_ + 2 * lr_ * temperature * np.eye(7)

    def chain_sigmas(Z, n_boot=40):
        """(sigma of the fitted chain, its s.e.; sigma from the current, its s.e.)"""
        stats = st.linear_chain_statistics(Z)
        M = Z.shape[1]

        def both(wts=None):
            f = st.linear_chain_from_statistics(stats, wts)
            return (
                sl.linear_chain_entropy_production_per_step(f["A"], f["Q"]),
                st.entropy_production_from_current(f["Omega"], f["Q"] / 2, f["C"]),
            )

        est = both()
        bs = np.array([both(np.bincount(g.integers(0, M, M), minlength=M))
                       for _ in range(n_boot)])  # fmt: skip
        se = bs.std(0, ddof=1)
        return est[0], se[0], est[1], se[1]

    def slope(R, t):
        fit = np.polyfit(t, np.log(R.mean(1)), 1)[0]
        parts = np.array_split(np.arange(R.shape[1]), 8)
        per = [np.polyfit(t, np.log(R[:, p].mean(1)), 1)[0] for p in parts]
        return float(fit), float(np.std(per, ddof=1) / np.sqrt(len(parts)))

    def run(lr_, B_, scheme, M, rng):
        return ss.simulate_bump_net_sgd(
            np.tile(wmin, (M, 1)), x, y, lr_, B_, n_burn + n_rec, rng, scheme,
            weight_decay, temperature=temperature,
        )  # fmt: skip

    Q = q_of(lr, batch_size)
    A = np.eye(7) - lr * H
    C_th = sl.discrete_lyapunov_covariance(A, Q)
    out = dict(
        wmin=wmin, H=H, Sigma=np.cov(G, rowvar=False, bias=True), Q=Q, C_theory=C_th,
        sigma_theory=sl.linear_chain_entropy_production_per_step(A, Q),
        sigma_current_theory=st.entropy_production_from_current(
            0.5 * lr * (H @ C_th - C_th @ H), Q / 2, C_th
        ),
        lr=lr, batch_size=batch_size, temperature=temperature, epoch_steps=nb,
        weight_decay=weight_decay, n_train=len(x),
    )  # fmt: skip
    rng = np.random.default_rng(seed + 52)
    for scheme in ("with", "without"):
        W = run(lr, batch_size, scheme, n_rep, rng)
        Z, Ze = W[n_burn:], W[n_burn::nb]
        se_, se_se = chain_sigmas(Ze)[:2]
        res = dict(
            gate=st.stationarity_gate(Z, seed=seed),
            C=np.cov(Z.reshape(-1, 7), rowvar=False),
            sigma_epoch=se_,
            sigma_epoch_se=se_se,
        )
        if scheme == "with":
            A_h, Q_h, c_h = st.fit_linear_chain(Z)
            R = np.linalg.norm(W - W[0], axis=2)
            t = np.arange(W.shape[0])
            b, b_se = slope(R[n_burn:], t[n_burn:])
            sv, sv_se, sc, sc_se = chain_sigmas(Z)
            res.update(
                sigma_var=sv, sigma_var_se=sv_se, sigma_current=sc, sigma_current_se=sc_se,
                s1=st.gaussian_chain_entropy_production(Z, A_h, Q_h, c_h),
                R=R.mean(1), steps=t, lnR_slope=b, lnR_slope_se=b_se,
            )  # fmt: skip
        out[scheme] = res
    sw = {}
    for lr_, B_ in sweep:
        if (lr_, B_) == (lr, batch_size):
            a = out["with"]
            sw[(lr_, B_)] = dict(
                sigma=a["sigma_var"], sigma_se=a["sigma_var_se"],
                slope=a["lnR_slope"], slope_se=a["lnR_slope_se"],
                gate=a["gate"]["passed"], sigma_theory=out["sigma_theory"],
            )  # fmt: skip
            continue
        W = run(lr_, B_, "with", max(64, n_rep // 2), rng)
        Z = W[n_burn:]
        R = np.linalg.norm(W - W[0], axis=2)[n_burn:]
        b, b_se = slope(R, np.arange(n_burn, W.shape[0]))
        A_ = np.eye(7) - lr_ * H
        sv, sv_se = chain_sigmas(Z, 20)[:2]
        sw[(lr_, B_)] = dict(
            sigma=sv, sigma_se=sv_se, slope=b, slope_se=b_se,
            gate=st.stationarity_gate(Z, seed=seed)["passed"],
            sigma_theory=sl.linear_chain_entropy_production_per_step(A_, q_of(lr_, B_)),
        )  # fmt: skip
    out["sweep"] = sw
    return out


def trap_protocol_work(
    seed: int, n_traj: int, dt: float, lam_f: float = 2.0, t_f: float = 1.0
) -> dict:
    """Seed sec. 6 'bounds on efficiency': the work to move a harmonic trap
    (mu = k = T = 1) from 0 to ``lam_f`` in time ``t_f`` from equilibrium, for the linear
    protocol and for Schmiedl & Seifert's optimum (PRL 98, 108301, 2007): jumps at both
    ends and ``lam*(t) = lam_f (1 + t) / (t_f + 2)`` in between, with
    ``W* = lam_f^2 / (t_f + 2)``; the linear protocol costs
    ``(lam_f/t_f)^2 [t_f - (1 - e^{-t_f})]``. Delta F = 0, so W is all dissipation.

    Returns
    -------
    dict: per protocol the work samples ``W_linear``, ``W_optimal`` and the closed forms.
    """
    g = np.random.default_rng(seed + 61)
    n = int(round(t_f / dt))
    t = np.arange(n + 1) * dt
    protocols = {
        "linear": lam_f * t / t_f,
        "optimal": np.r_[0.0, lam_f * (1 + t[1:-1]) / (t_f + 2), lam_f],
    }
    out = {}
    for name, lam in protocols.items():
        x = g.standard_normal(n_traj)
        W = np.zeros(n_traj)
        for k in range(n):
            # the protocol steps first (work at fixed x), then x moves in the new trap
            W += 0.5 * ((x - lam[k + 1]) ** 2 - (x - lam[k]) ** 2)
            if k < n - 1 or name == "linear":
                x += -(x - lam[k + 1]) * dt + np.sqrt(2 * dt) * g.standard_normal(
                    n_traj
                )
        out["W_" + name] = W
    out["closed_linear"] = (lam_f / t_f) ** 2 * (t_f - (1 - np.exp(-t_f)))
    out["closed_optimal"] = lam_f**2 / (t_f + 2)
    return out


def mlp_noise_isotropy(
    cfg, theta_flat, n_boot: int = 20, n_examples: int = 256
) -> dict:
    """Seed sec. 1.2 assumes a scalar diffusion constant D: is the minibatch-noise
    covariance of the trained MLP isotropic? Per-example gradients of one replica (the
    sec. 3 network at the end of its run) on the training set; the participation ratio
    ``PR = (tr S)^2 / tr S^2`` of their covariance ``S`` equals ``P`` for isotropic noise.

    Returns
    -------
    dict: ``P``, ``pr`` and its example-bootstrap ``pr_se``, ``top1_fraction`` (variance
    share of the top 1 % of eigen-directions), ``eigenvalues``.
    """
    import torch

    from ..data import load_digits_tensors, load_mnist
    from ..estimators.gradient_noise import per_sample_gradients
    from ..models import MLP

    data = (
        load_mnist(cfg.data_root, device="cpu")
        if cfg.data_root
        else load_digits_tensors(device="cpu", seed=cfg.seed)
    )
    x, y = data.x_train[:n_examples], data.y_train[:n_examples]
    model = MLP(data.in_dim, cfg.hidden, data.n_classes, depth=cfg.depth)
    theta = torch.as_tensor(np.asarray(theta_flat), dtype=torch.float32)
    Gs = per_sample_gradients(model, theta, x, y).double().numpy()
    P = Gs.shape[1]

    def pr(G):
        Gc = G - G.mean(0)
        lam = np.linalg.eigvalsh(Gc @ Gc.T / G.shape[0])
        return lam.sum() ** 2 / (lam**2).sum(), lam

    val, lam = pr(Gs)
    g = np.random.default_rng(cfg.seed + 71)
    boot = [pr(Gs[g.integers(0, len(Gs), len(Gs))])[0] for _ in range(n_boot)]
    lam = np.sort(lam)[::-1]
    top = max(1, P // 100)
    return dict(
        P=P, pr=float(val), pr_se=float(np.std(boot, ddof=1)),
        top1_fraction=float(lam[:top].sum() / lam.sum()), eigenvalues=lam,
    )  # fmt: skip
