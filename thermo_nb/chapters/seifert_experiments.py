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
    stat = record_ensemble_trajectory(
        tr, cfg.n_stationary_steps, 1, with_grad=False, desc="stationary segment",
        **common,
    )  # fmt: skip
    return {"run": run, "stationary": stat, "P": P}


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
