r"""Maximum-likelihood training of energy-based models with Langevin negatives, vectorised
over an ensemble of runs, with Parsi's work and heat bookkeeping.

Conventions (Parsi, arXiv 2310.19802, Sec. 5.2 and Eq. 33).  One update ``t`` is the
bipartite step

.. math:: (x_{t-1}, \theta_{t-1}) \to (x_{t-1}, \theta_t) \to (x_t, \theta_t),

first the optimiser moves :math:`\theta` at fixed samples (using the chains
:math:`x_{t-1}` as negative samples), then ``tau`` sampler steps move the persistent chains
at fixed :math:`\theta_t`.  With the surprisal :math:`\phi_\theta = -\ln p_\theta`,

.. math::
    \delta W_t = \langle\phi_{\theta_t}\rangle_{p(x|\theta_{t-1})}
               - \langle\phi_{\theta_{t-1}}\rangle_{p(x|\theta_{t-1})}
               \quad\text{(Eq. 51)},\qquad
    \delta Q_t = \langle\phi_{\theta_t}\rangle_{p(x|\theta_t)}
               - \langle\phi_{\theta_t}\rangle_{p(x|\theta_{t-1})}
               \quad\text{(Eq. 52)},

computed exactly by grid quadrature, and from the chains as a practitioner would (the
same differences of the unnormalised energy :math:`E_\theta` at the chain positions; the
heat does not need :math:`Z_\theta`, the work differs from Eq. 51 by
:math:`\Delta\ln Z`).  The first law :math:`\Delta U = W + Q` telescopes in both.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.toy2d import eight_gaussians_log_density, sample_eight_gaussians
from ..dynamics.mala import exact_gaussian_langevin, mala
from ..estimators.grid_quadrature import (
    grid_conditional_l_info,
    grid_cross_entropy,
    grid_entropy,
    grid_expectation,
    grid_log_density,
    grid_log_partition,
    grid_mixture_log_density,
    grid_sample,
    make_grid_2d,
)
from ..models.ebm import init_mlp_energy, mlp_energy

__all__ = [
    "train_mlp_ebm_ensemble",
    "probe_chain_work",
    "train_gaussian_ebm_ensemble",
    "gaussian_ebm_stationary_variance",
    "gaussian_ebm_information",
]


# ----------------------------------------------------------------------------- MLP EBM
def _adam(params, grads, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    for p, g, mi, vi in zip(params, grads, m, v):
        mi.mul_(b1).add_(g, alpha=1 - b1)
        vi.mul_(b2).addcmul_(g, g, value=1 - b2)
        mhat = mi / (1 - b1**t)
        vhat = vi / (1 - b2**t)
        p.sub_(lr * mhat / (vhat.sqrt() + eps))


def _grid_state(params, grid, base_std):
    R = params[0].shape[0]
    pts = grid.points.expand(R, -1, -1)
    with torch.no_grad():
        e = mlp_energy(params, pts, base_std)
    return grid_log_density(e, grid.cell_area), grid_log_partition(e, grid.cell_area)


def _loss_grads(params, pos, neg, base_std):
    ps = [p.detach().requires_grad_(True) for p in params]
    loss = (
        mlp_energy(ps, pos, base_std).mean(-1) - mlp_energy(ps, neg, base_std).mean(-1)
    ).sum()
    return [g.detach() for g in torch.autograd.grad(loss, ps)]


def _flat_norm(gs):
    return torch.sqrt(sum((g**2).flatten(1).sum(1) for g in gs))


def train_mlp_ebm_ensemble(
    *,
    n_replicas: int = 8,
    hidden: int = 32,
    depth: int = 2,
    n_updates: int = 1500,
    tau: int = 10,
    n_chains: int = 256,
    batch_size: int = 128,
    lr: float = 1e-2,
    lr_final: float = 1e-3,
    mala_step: float = 0.05,
    n_train: int = 2000,
    grid_limit: float = 5.0,
    grid_n: int = 64,
    base_std: float = 1.5,
    data_radius: float = 2.0,
    data_std: float = 0.25,
    probe_window: int = 200,
    record_every: int = 50,
    seed: int = 0,
    data: "torch.Tensor | None" = None,
    device=None,
    cache=None,
    show_progress: bool = True,
) -> dict:
    r"""Train ``n_replicas`` MLP EBMs on the 8-Gaussians set, recording Parsi's quantities.

    Parameters
    ----------
    n_replicas : int
        Ensemble size R: same data, same :math:`\theta_0`, different minibatch and
        sampler noise (Parsi's ensemble of computers, Sec. 3.3).
    hidden, depth : int
        MLP width and number of hidden layers (:func:`~thermo_nb.models.ebm.mlp_energy`).
    n_updates : int
        Parameter updates n.
    tau : int
        MALA steps per update (Parsi's complexity parameter, Eq. 17).
    n_chains : int
        Persistent chains per replica (negative samples).
    batch_size : int
        Data minibatch per update.
    lr, lr_final : float
        Adam learning rate, decayed on a cosine from ``lr`` to ``lr_final``.
    mala_step : float
        MALA step size h.
    n_train : int
        Size K of the training set B (one set shared by the ensemble).
    grid_limit, grid_n : float, int
        Quadrature box ``[-grid_limit, grid_limit]^2`` with ``grid_n`` points per axis.
    base_std : float
        Confining scale of the energy.
    data_radius, data_std : float
        The 8-Gaussians target.
    probe_window : int
        The last ``probe_window`` parameter vectors of replica 0 are kept (every
        update) to drive probe chains (:func:`probe_chain_work`).
    record_every : int
        Updates between laziness measurements (gradient change across one step).
    seed : int
    data : torch.Tensor, shape (K, d), optional
        A training set to use instead of the 8-Gaussians draw (for example standardised
        digits, d = 64).  With ``d != 2`` or ``grid_n == 0`` there is no quadrature: the
        exact quantities are NaN and only the sample-based ones are recorded.
    device : torch.device or str, optional
        Where the ensemble runs (default CPU; records come back as numpy arrays).
    cache : ResultCache, optional
        Makes the run resumable (:func:`~thermo_nb.runtime.run_resumable`).
    show_progress : bool

    Returns
    -------
    dict of numpy arrays
        Per update ``t = 1..n`` and replica (shape (n, R)): ``work_exact`` (Eq. 51 term),
        ``heat_exact`` (Eq. 52 term), ``work_samples`` and ``heat_samples`` (chain
        averages of the energy differences), ``accept``; per recorded time
        ``t = 0..n`` (shape (n + 1, R)): ``cond_entropy`` :math:`S_{X|\Theta}(\theta_t)`,
        ``marg_entropy`` :math:`S_X(\theta_t)` (PA, against the ensemble marginal),
        ``l_info`` (Eq. 25), ``nll`` (exact test NLL :math:`H(p^*, p_\theta)`), ``log_z``,
        ``energy_samples`` (chain average of :math:`E_{\theta_t}(x_t)`); plus
        ``data_entropy``, the final grid log-densities, chains, training data, the probe
        trajectory and the laziness ratios.

    Notes
    -----
    Loss per replica: :math:`\langle E_\theta\rangle_{b_t} - \langle E_\theta\rangle_{x_{t-1}}`,
    whose gradient is the maximum-likelihood gradient when the chains sample
    :math:`p_\theta` (Song & Kingma 2021, Eq. 4).
    """
    from ..runtime import ResultCache, run_resumable

    dtype = torch.float64
    dev = torch.device(device) if device is not None else torch.device("cpu")
    dim = 2 if data is None else int(data.shape[1])
    use_grid = dim == 2 and grid_n > 0
    R = n_replicas
    if use_grid:
        grid = make_grid_2d(grid_limit, grid_n, dtype, dev)
        log_target = eight_gaussians_log_density(grid.points, data_radius, data_std)
        data_entropy = float(grid_entropy(log_target, grid.cell_area))
    else:
        grid, log_target, data_entropy = None, None, float("nan")

    dev_gen = {}

    def gdev(gen):
        """The sampler's noise source: the CPU generator, or one on the device."""
        if dev.type == "cpu":
            return gen
        if "g" not in dev_gen:
            dev_gen["g"] = torch.Generator(device=dev).manual_seed(seed + 1)
        return dev_gen["g"]

    def init():
        gen = torch.Generator().manual_seed(seed)
        params = init_mlp_energy(
            R, hidden, depth, dim, gen, same_init=True, dtype=dtype
        )
        params = [p.to(dev) for p in params]
        if data is None:
            train = sample_eight_gaussians(n_train, data_radius, data_std, gen, dtype)
        else:
            train = torch.as_tensor(data, dtype=dtype)
        train = train.to(dev)
        if use_grid:
            log_p, log_z = _grid_state(params, grid, base_std)
            # chains start from p(x|theta_0): grid draw, then exact MALA burn-in
            x0 = grid_sample(log_p[0], grid, n_chains, gen)
        else:
            log_p, log_z = None, None
            x0 = base_std * torch.randn(n_chains, dim, generator=gen, dtype=dtype)
            x0 = x0.to(dev)
        x0 = x0.expand(R, -1, -1).clone()
        st = mala(
            lambda x: mlp_energy(params, x, base_std),
            x0,
            50,
            mala_step,
            generator=gdev(gen),
        )
        n = n_updates
        rec = {
            k: np.zeros((n, R))
            for k in (
                "work_exact",
                "heat_exact",
                "work_samples",
                "heat_samples",
                "accept",
            )
        }
        rec.update(
            {
                k: np.zeros((n + 1, R))
                for k in (
                    "cond_entropy",
                    "marg_entropy",
                    "l_info",
                    "nll",
                    "log_z",
                    "energy_samples",
                )
            }
        )
        for k in rec:
            rec[k][:] = np.nan if k not in ("energy_samples",) else 0.0
        state = {
            "params": params,
            "m": [torch.zeros_like(p) for p in params],
            "v": [torch.zeros_like(p) for p in params],
            "x": st.x,
            "e": st.energy,
            "data": train,
            "log_p": log_p,
            "rec": rec,
            "lazy_t": [],
            "lazy": [],
            "probe_params": [],
            "rng": gen.get_state(),
        }
        _record(state, 0, log_p, log_z)
        state["rec"]["energy_samples"][0] = st.energy.mean(-1).cpu().numpy()
        return state

    def _record(state, t, log_p, log_z):
        if log_p is None:
            return
        rec = state["rec"]
        ca = grid.cell_area
        mix = grid_mixture_log_density(log_p, 0)
        rec["cond_entropy"][t] = grid_entropy(log_p, ca).cpu().numpy()
        rec["marg_entropy"][t] = grid_cross_entropy(log_p, mix[None], ca).cpu().numpy()
        rec["l_info"][t] = grid_conditional_l_info(log_p, ca).cpu().numpy()
        rec["nll"][t] = grid_cross_entropy(log_target[None], log_p, ca).cpu().numpy()
        rec["log_z"][t] = log_z.cpu().numpy()

    def step(state, i):
        t = i + 1
        gen = torch.Generator()
        gen.set_state(state["rng"])
        params, train = state["params"], state["data"]
        idx = torch.randint(0, train.shape[0], (R, batch_size), generator=gen)
        pos, neg = train[idx.to(dev)], state["x"]
        grads = _loss_grads(params, pos, neg, base_std)
        old = [p.clone() for p in params]
        with torch.no_grad():
            lr_t = lr_final + 0.5 * (lr - lr_final) * (
                1 + math.cos(math.pi * (t - 1) / n_updates)
            )
            _adam(params, grads, state["m"], state["v"], t, lr_t)
        if t % record_every == 0:  # laziness: gradient change across the step
            g_new = _loss_grads(params, pos, neg, base_std)
            diff = _flat_norm([a - b for a, b in zip(g_new, grads)])
            state["lazy_t"].append(t)
            state["lazy"].append((diff / _flat_norm(grads)).cpu().numpy())
        if t > n_updates - probe_window:
            if not state["probe_params"]:
                state["probe_params"].append([p[0].clone() for p in old])
            state["probe_params"].append([p[0].clone() for p in params])
        rec = state["rec"]
        log_p = log_z = None
        if use_grid:
            ca = grid.cell_area
            log_p_old = state["log_p"]
            log_p, log_z = _grid_state(params, grid, base_std)
            # Eq. 51 and Eq. 52 terms, exactly by quadrature (phi = -log p)
            phi_new = -log_p
            w = grid_expectation(log_p_old, phi_new + log_p_old, ca)
            q = grid_expectation(log_p, phi_new, ca) - grid_expectation(
                log_p_old, phi_new, ca
            )
            rec["work_exact"][i] = w.cpu().numpy()
            rec["heat_exact"][i] = q.cpu().numpy()
        # the same from the chains, with the unnormalised energy
        energy = lambda x: mlp_energy(params, x, base_std)  # noqa: E731
        with torch.no_grad():
            e_mid = energy(neg)
        st = mala(energy, neg, tau, mala_step, generator=gdev(gen))
        rec["work_samples"][i] = (e_mid - state["e"]).mean(-1).cpu().numpy()
        rec["heat_samples"][i] = (st.energy - e_mid).mean(-1).cpu().numpy()
        rec["accept"][i] = st.accept_rate.mean(-1).cpu().numpy()
        rec["energy_samples"][t] = st.energy.mean(-1).cpu().numpy()
        state["x"], state["e"], state["log_p"] = st.x, st.energy, log_p
        _record(state, t, log_p, log_z)
        state["rng"] = gen.get_state()
        return state

    key = dict(
        n_replicas=R,
        hidden=hidden,
        depth=depth,
        n_updates=n_updates,
        tau=tau,
        n_chains=n_chains,
        batch_size=batch_size,
        lr=lr,
        lr_final=lr_final,
        mala_step=mala_step,
        n_train=n_train,
        grid_limit=grid_limit,
        grid_n=grid_n,
        base_std=base_std,
        data_radius=data_radius,
        data_std=data_std,
        probe_window=probe_window,
        record_every=record_every,
        seed=seed,
        data=None if data is None else np.asarray(data, dtype=np.float64),
    )
    if cache is None:
        import tempfile

        cache = ResultCache(tempfile.mkdtemp(), enabled=False)
    state = run_resumable(
        cache,
        "mlp_ebm",
        key,
        init,
        step,
        n_updates,
        checkpoint_every=250,
        desc="EBM ensemble",
        show_progress=show_progress,
    )
    out = dict(state["rec"])
    key.pop("data")
    out.update(
        data_entropy=data_entropy,
        log_p_final=None if state["log_p"] is None else state["log_p"].cpu().numpy(),
        log_target=None if log_target is None else log_target.cpu().numpy(),
        chains=state["x"].cpu().numpy(),
        data=state["data"].cpu().numpy(),
        lazy_t=np.asarray(state["lazy_t"]),
        lazy=np.asarray(state["lazy"]),
        probe_params=[
            torch.stack([pp[j] for pp in state["probe_params"]]).cpu()
            for j in range(len(state["params"]))
        ],
        grid_axis=None if grid is None else grid.axis.cpu().numpy(),
        config=key,
    )
    return out


def probe_chain_work(
    energy_at,
    n_protocol: int,
    x0: torch.Tensor,
    tau: int,
    step: float,
    generator=None,
) -> dict:
    r"""Work on probe chains driven by a recorded parameter protocol (never fed back).

    Parameters
    ----------
    energy_at : callable
        ``energy_at(i)`` returns the energy function :math:`E_{\theta_i}` (``x -> E``) of
        protocol point ``i = 0..n_protocol``.
    n_protocol : int
        Number of parameter changes.
    x0 : torch.Tensor, shape (C, d)
        Initial chains, distributed as :math:`p_{\theta_0}`.
    tau : int
        MALA steps after each parameter change.
    step : float
        MALA step size.
    generator : torch.Generator, optional

    Returns
    -------
    dict
        ``work`` (C,), :math:`W = \sum_i [E_{\theta_i}(x_{i-1}) - E_{\theta_{i-1}}(x_{i-1})]`;
        ``heat`` (C,); ``accept`` (mean acceptance).

    Notes
    -----
    Because MALA satisfies detailed balance with respect to :math:`e^{-E_{\theta_i}}`,
    Jarzynski's equality :math:`\langle e^{-W}\rangle = e^{-\Delta F}` with
    :math:`\Delta F = \ln Z_{\theta_0} - \ln Z_{\theta_n}` holds exactly in discrete time
    (Crooks 1998), and :math:`\langle W\rangle - \Delta F \ge 0` is the dissipated work.

    References
    ----------
    G. E. Crooks, J. Stat. Phys. 90, 1481 (1998).
    """
    x = x0
    e_prev = energy_at(0)
    with torch.no_grad():
        e_old = e_prev(x)
    work = torch.zeros(x.shape[:-1], dtype=x.dtype)
    heat = torch.zeros_like(work)
    acc = 0.0
    for i in range(1, n_protocol + 1):
        en = energy_at(i)
        with torch.no_grad():
            e_mid = en(x)
        work += e_mid - e_old
        st = mala(en, x, tau, step, generator=generator)
        heat += st.energy - e_mid
        acc += float(st.accept_rate.mean())
        x, e_old = st.x, st.energy
    return {"work": work, "heat": heat, "accept": acc / max(n_protocol, 1), "x": x}


# ------------------------------------------------------------ Gaussian (mean) EBM
def train_gaussian_ebm_ensemble(
    *,
    n_datasets: int = 64,
    n_noise: int = 8,
    n_train: int = 64,
    batch_size: int = 16,
    n_chains: int = 16,
    lr: float = 0.1,
    tau: int = 10,
    step: float = 0.05,
    n_updates: int = 400,
    mu_star=(1.0, -0.5),
    data_std: float = 1.0,
    sigma: float = 1.0,
    init_std: float = 1.0,
    record_every: int = 10,
    seed: int = 0,
) -> dict:
    r"""Ensemble training of the Gaussian-mean EBM :math:`E_\theta = |x-\theta|^2/(2\sigma^2)`.

    Parameters
    ----------
    n_datasets, n_noise : int
        ``n_datasets`` training sets :math:`B` drawn from :math:`\mathcal N(\mu^*, s^2 I)`,
        each trained by ``n_noise`` replicas with independent SGD and sampler noise
        (R = n_datasets * n_noise replicas, replica ``r`` uses set ``r // n_noise``).
    n_train : int
        Points per training set.
    batch_size, n_chains : int
        Minibatch (drawn with replacement) and persistent chains per replica.
    lr : float
        SGD step on the natural parameter (:math:`\theta = \sigma^2\eta`):
        :math:`\theta_t = \theta_{t-1} - r\sigma^2(\bar x_{\rm chains} - \bar x_{b_t})`.
    tau, step : int, float
        Sampler steps per update and their size: the chains follow the exact Langevin
        (OU) kernel for time :math:`\tau h` (:func:`exact_gaussian_langevin`).
    n_updates : int
    mu_star, data_std : target mean and standard deviation :math:`s`.
    sigma : float
        Model scale (fixed).
    init_std : float
        :math:`\theta_0 \sim \mathcal N(0, \mathrm{init\_std}^2 I)` i.i.d. per replica.
    record_every : int
    seed : int

    Returns
    -------
    dict
        ``theta`` (n_rec, R, 2) at ``t_rec``; ``data_mean`` (R, 2); ``heat`` (n, R)
        per-update Eq. 52 term :math:`-|\Delta\theta|^2/(2\sigma^2)`; ``cond_ep_probe``
        (n, R), the exact conditional entropy production of probe chains (started in
        :math:`p_{\theta_0}`, never fed back) under this protocol; ``A`` the sampler
        contraction :math:`e^{-\tau h/\sigma^2}`.

    Notes
    -----
    Probe-chain law given the protocol: :math:`\mathcal N(m_t, \sigma^2 I)` with
    :math:`m_t = \theta_t + A(m_{t-1}-\theta_t)`; the entropy produced while relaxing at
    fixed :math:`\theta_t` is :math:`\mathrm{KL}(\rho_{t-1}\|p_t) - \mathrm{KL}(\rho_t\|p_t)
    = (1-A^2)|m_{t-1}-\theta_t|^2/(2\sigma^2)`.
    """
    dtype = torch.float64
    gen = torch.Generator().manual_seed(seed)
    R = n_datasets * n_noise
    mu = torch.as_tensor(mu_star, dtype=dtype)
    sets = mu + data_std * torch.randn(
        n_datasets, n_train, 2, generator=gen, dtype=dtype
    )
    data = sets.repeat_interleave(n_noise, 0)  # (R, n_train, 2)
    theta = init_std * torch.randn(R, 2, generator=gen, dtype=dtype)
    chains = theta[:, None] + sigma * torch.randn(
        R, n_chains, 2, generator=gen, dtype=dtype
    )
    m_probe = theta.clone()
    A = math.exp(-tau * step / sigma**2)
    heat = np.zeros((n_updates, R))
    cond_ep = np.zeros((n_updates, R))
    t_rec, th_rec = [0], [theta.clone()]
    for i in range(n_updates):
        idx = torch.randint(0, n_train, (R, batch_size), generator=gen)
        xb = torch.gather(data, 1, idx[..., None].expand(-1, -1, 2)).mean(1)
        new = theta - lr * sigma**2 * (chains.mean(1) - xb)
        heat[i] = (-((new - theta) ** 2).sum(-1) / (2 * sigma**2)).numpy()
        cond_ep[i] = (
            (1 - A * A) * ((m_probe - new) ** 2).sum(-1) / (2 * sigma**2)
        ).numpy()
        m_probe = new + A * (m_probe - new)
        theta = new
        chains = exact_gaussian_langevin(
            chains, theta[:, None], sigma**2, tau * step, gen
        )
        if (i + 1) % record_every == 0 or i + 1 == n_updates:
            t_rec.append(i + 1)
            th_rec.append(theta.clone())
    return {
        "t": np.asarray(t_rec),
        "theta": torch.stack(th_rec).numpy(),
        "data_mean": data.mean(1).numpy(),
        "heat": heat,
        "cond_ep_probe": cond_ep,
        "A": A,
        "config": dict(
            n_datasets=n_datasets,
            n_noise=n_noise,
            n_train=n_train,
            batch_size=batch_size,
            n_chains=n_chains,
            lr=lr,
            tau=tau,
            step=step,
            n_updates=n_updates,
            data_std=data_std,
            sigma=sigma,
            init_std=init_std,
        ),
    }


def gaussian_ebm_stationary_variance(
    lr: float,
    batch_size: int,
    n_chains: int,
    A: float,
    data_var: float,
    sigma: float = 1.0,
    n_train: "int | None" = None,
) -> float:
    r"""Stationary variance :math:`v` (per coordinate) of :math:`\theta - \bar x_B` under
    the training of :func:`train_gaussian_ebm_ensemble`.

    Parameters
    ----------
    lr, batch_size, n_chains : as in training.
    A : float
        Sampler contraction per update, :math:`e^{-\tau h/\sigma^2}`.
    data_var : float
        :math:`s^2`.
    sigma : float
    n_train : int, optional
        Size of each training set: the minibatch mean has variance
        :math:`s_B^2/b` with :math:`E[s_B^2] = s^2 (n-1)/n`.

    Returns
    -------
    float

    Notes
    -----
    With :math:`u = \theta - \bar x_B`, :math:`w = \bar x_{\rm chains} - \theta`,
    :math:`k = r\sigma^2`, the pair is the linear chain

    .. math:: u' = (1-k)u - k w + k\varepsilon_b,\qquad
              w' = A[(1+k)w + k u - k\varepsilon_b] + \eta,

    :math:`\mathrm{Var}\,\varepsilon_b = s_B^2/b`,
    :math:`\mathrm{Var}\,\eta = (1-A^2)\sigma^2/C`; :math:`v` is the ``uu`` entry of
    the solution of the discrete Lyapunov equation :math:`C = MCM^T + Q`.
    """
    from ..dynamics.sgd_linear import discrete_lyapunov_covariance

    k = lr * sigma**2
    sb2 = data_var * ((n_train - 1) / n_train if n_train else 1.0)
    M = np.array([[1 - k, -k], [A * k, A * (1 + k)]])
    e = sb2 / batch_size
    Q = k * k * e * np.array([[1.0, -A], [-A, A * A]])
    Q[1, 1] += (1 - A * A) * sigma**2 / n_chains
    return float(discrete_lyapunov_covariance(M, Q)[0, 0])


def gaussian_ebm_information(
    v: float, data_var: float, n_train: int, sigma: float = 1.0, d: int = 2
) -> dict:
    r"""Closed-form M-info and L-info of the Gaussian-mean EBM ensemble (nats).

    Parameters
    ----------
    v : float
        Stationary SGD variance of :math:`\theta` given the training set
        (:func:`gaussian_ebm_stationary_variance`).
    data_var : float
        :math:`s^2`.
    n_train : int
        Training-set size n.
    sigma : float
        Model scale.
    d : int
        Dimension.

    Returns
    -------
    dict
        ``m_info`` :math:`I(\Theta;B) = \frac d2\ln(1+\frac{s^2/n}{v})` (Eq. 14),
        ``l_info_b`` :math:`I(X;B) = \frac d2\ln(1+\frac{s^2/n}{v+\sigma^2})` (Eq. 13),
        ``l_info_theta`` :math:`I(X;\Theta) = \frac d2\ln(1+\frac{v+s^2/n}{\sigma^2})`
        (Eq. 16), ``s_theta`` the entropy of :math:`\Theta`,
        :math:`\frac d2\ln(2\pi e(v+s^2/n))`.

    Notes
    -----
    :math:`\bar x_B\sim\mathcal N(\mu^*, s^2/n)`, :math:`\Theta|B\sim\mathcal N(\bar
    x_B, v)`, :math:`X|\Theta\sim\mathcal N(\Theta,\sigma^2)`, all isotropic (reference
    note, Sec. 5.4); the SGD noise is treated as Gaussian.
    """
    s2n = data_var / n_train
    return {
        "m_info": 0.5 * d * math.log1p(s2n / v),
        "l_info_b": 0.5 * d * math.log1p(s2n / (v + sigma**2)),
        "l_info_theta": 0.5 * d * math.log1p((v + s2n) / sigma**2),
        "s_theta": 0.5 * d * math.log(2 * math.pi * math.e * (v + s2n)),
    }
