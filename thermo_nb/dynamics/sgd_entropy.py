r"""Trajectory entropy production of SGD replicas, projected onto a low-dimensional subspace.

A network's parameter density p(theta, t) in P ~ 10^3-10^5 dimensions cannot be estimated
from a few hundred replicas.  This module makes the approximation explicit:

1. **Subspace.**  Project every replica's parameters on the k leading principal directions
   ``U`` (P x k, orthonormal) of the *within-ensemble* spread, pooled over the recorded
   times: ``z = U^T (theta - theta_ref)``.  The density studied is that of z, a k-dim
   marginal of p(theta, t).
2. **Density.**  At every recorded time fit a Gaussian ``N(m_t, C_t)`` to the M replicas'
   z (maximum likelihood, a small ridge on C_t); the system entropy is
   ``s(t) = -ln N(z(t); m_t, C_t)`` (Seifert 2005, eq. 4).  Justification: z is a sum of
   many weakly dependent coordinates (central-limit argument) and, at initialisation, a
   projection of a product of independent uniform (Kaiming) coordinates; the Gaussian fit is
   exact to second order and its error is visible in a normality check.
3. **Medium entropy.**  In the subspace, SGD is modelled as the Langevin process
   ``dz = a(z) dt + sqrt(2 D) dW`` with drift per step ``a = -eta U^T grad L`` (full-batch
   gradient) and diffusion ``D = Q/2`` per step, ``Q`` the covariance of the noise
   increment per step, estimated from the Euler residuals ``dz - r a(z_k)`` of records r
   steps apart.
   The medium entropy is the Stratonovich integral (Seifert 2005, eq. 6 with F = a/mu and
   T = D/mu generalised to a matrix D)

       Delta s_m = sum_k a_k^T D^{-1} o dz_k = sum_k 2 abar_k^T Q^{-1} (z_{k+1} - z_k),
       abar_k = -eta U^T (g_k + g_{k+1}) / 2,

   which for isotropic noise ``Q = 2 eta T I`` is ``-(1/T) sum grad L o d theta`` with the
   seed's symbols, with a **minus** sign (the seed's sec. 2.2 has +).
4. **Total.**  ``Delta s_tot = Delta s_m + ln p_0(z_0) - ln p_t(z_t)``.

All of this is an estimate: the projection drops P - k directions, the noise is treated as
state-independent and Gaussian, and the gradient is only seen at the recorded times.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..runtime import progress

__all__ = [
    "record_ensemble_trajectory",
    "record_distance_from_init",
    "top_variance_subspace",
    "gaussian_fit_log_density",
    "subspace_entropy_production",
]


def record_ensemble_trajectory(
    trainer,
    n_steps: int,
    record_every: int,
    *,
    with_grad: bool = True,
    coords=None,
    grad_examples: int | None = None,
    seed: int = 0,
    desc: str = "SGD ensemble",
) -> dict:
    """Train an :class:`~thermo_nb.training.ensemble.EnsembleTrainer` and record snapshots.

    Parameters
    ----------
    trainer : EnsembleTrainer
    n_steps : int >= 1, SGD steps to take (a multiple of ``record_every``)
    record_every : int >= 1
    with_grad : bool, also record the full-batch gradient at each snapshot (costly)
    coords : 1-D integer array, optional
        Record only these parameter coordinates (an exact marginal of p(theta, t); keeps
        memory bounded for large networks). ``None`` records all P coordinates.
    grad_examples : int, optional
        Evaluate the "full-batch" gradient on a fixed random subset of this many training
        examples (chosen once with ``seed``), to bound the cost on large data sets; ``None``
        or a number >= N uses the whole training set.

    Returns
    -------
    dict with numpy arrays: ``steps (K+1,)``, ``theta (K+1, M, P)`` float32,
    ``grad (K+1, M, P)`` float32 (if ``with_grad``), ``loss (K+1, M)`` training loss (on the
    ``grad_examples`` subset when given),
    ``diverged (M,)`` bool, and ``lr (M,)``.
    """
    if n_steps < 1 or record_every < 1 or n_steps % record_every:
        raise ValueError(
            f"n_steps ({n_steps}) must be a positive multiple of record_every "
            f"({record_every})"
        )
    thetas, grads, losses, steps = [], [], [], []

    idx = (
        None
        if coords is None
        else torch.as_tensor(np.asarray(coords), dtype=torch.long)
    )
    n_data = trainer.x.shape[0]
    if grad_examples is None or grad_examples <= 0 or grad_examples >= n_data:
        gx = gy = None
    else:
        sub = torch.as_tensor(
            np.sort(
                np.random.default_rng(seed).choice(n_data, grad_examples, replace=False)
            )
        )
        sub = sub.to(trainer.x.device)
        gx, gy = trainer.x[sub], trainer.y[sub]

    def pick(flat):
        flat = flat if idx is None else flat[:, idx.to(flat.device)]
        return flat.float().cpu().numpy()

    def snap():
        steps.append(trainer.step_count)
        thetas.append(pick(trainer.flat_params()))
        losses.append(trainer.full_loss(gx, gy).double().cpu().numpy())
        if with_grad:
            grads.append(pick(trainer.per_replica_grad(gx, gy)))

    snap()
    for i in progress(range(n_steps), total=n_steps, desc=desc):
        trainer.step()
        if (i + 1) % record_every == 0:
            snap()
    out = {
        "steps": np.array(steps),
        "theta": np.stack(thetas),
        "loss": np.stack(losses),
        "diverged": trainer.diverged.cpu().numpy().copy(),
        "lr": trainer.lr.double().cpu().numpy().copy(),
    }
    if with_grad:
        out["grad"] = np.stack(grads)
    return out


def top_variance_subspace(theta, k: int) -> np.ndarray:
    """Orthonormal basis (P, k) of the k leading directions of within-ensemble spread.

    Parameters
    ----------
    theta : (K, M, P) snapshots of M replicas at K times
    k : int, 1 <= k <= min(K*M - K, P)

    Notes
    -----
    The replicas are centred at each time separately (so the deterministic drift of the
    ensemble mean does not dominate), stacked, and the top-k right singular vectors kept.
    """
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 3:
        raise ValueError(f"theta must have shape (K, M, P), got {theta.shape}")
    K, M, P = theta.shape
    if not (1 <= k <= min(K * (M - 1), P)):
        raise ValueError(f"k must be in [1, {min(K * (M - 1), P)}], got {k}")
    if M < k + 2:
        raise ValueError(
            f"need at least k + 2 = {k + 2} replicas for a k-dim Gaussian fit, "
            f"got M = {M}"
        )
    X = (theta - theta.mean(axis=1, keepdims=True)).reshape(K * M, P)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    return vt[:k].T.copy()


def gaussian_fit_log_density(z, ridge: float = 1e-9) -> tuple:
    """Maximum-likelihood Gaussian fit to samples z (M, k) and ``ln N(z; m, C)`` at them.

    Returns
    -------
    (log_density (M,), mean (k,), cov (k, k)); nats.
    """
    z = np.asarray(z, dtype=np.float64)
    M, k = z.shape
    if M < k + 2:
        raise ValueError(f"need at least k + 2 = {k + 2} samples, got {M}")
    m = z.mean(axis=0)
    C = np.cov(z, rowvar=False, bias=True).reshape(k, k)
    C = C + ridge * np.trace(C) / k * np.eye(k)
    L = np.linalg.cholesky(C)
    r = np.linalg.solve(L, (z - m).T)
    logdet = 2 * np.log(np.diag(L)).sum()
    return (
        -0.5 * (r * r).sum(axis=0) - 0.5 * logdet - 0.5 * k * math.log(2 * math.pi),
        m,
        C,
    )


def subspace_entropy_production(theta, grad, lr, record_every: int, basis) -> dict:
    r"""System, medium and total entropy (nats) of each replica in a k-dim subspace.

    Parameters
    ----------
    theta : (K+1, M, P) parameter snapshots (record ``record_every`` steps apart)
    grad : (K+1, M, P) full-batch gradients at the snapshots
    lr : float or (M,) learning rates eta
    record_every : int >= 1, SGD steps between snapshots (r)
    basis : (P, k) orthonormal projection U

    Returns
    -------
    dict of numpy arrays:
      ``delta_s_sys (M,)`` = ln p_0(z_0) - ln p_t(z_t),
      ``delta_s_medium (M,)`` (Stratonovich, see module notes),
      ``delta_s_tot (M,)``, ``s_sys_path (K+1, M)`` = -ln p_t(z_t) along the run,
      ``s_medium_path (K+1, M)`` cumulative, ``Q (k, k)`` noise covariance per step,
      ``z (K+1, M, k)``.

    Notes
    -----
    The noise covariance per step is
    :math:`Q = \frac{1}{r\,K M}\sum_{k,m} \epsilon_{km}\epsilon_{km}^T`,
    :math:`\epsilon_{km} = \Delta z_{km} - r\,a_{km}` (pre-point drift: the Euler residual, so
    Q is unbiased for one-step records; the Stratonovich midpoint drift would add O(eta H) Q).
    """
    theta = np.asarray(theta, dtype=np.float64)
    grad = np.asarray(grad, dtype=np.float64)
    U = np.asarray(basis, dtype=np.float64)
    if theta.shape != grad.shape or theta.ndim != 3:
        raise ValueError(
            f"theta and grad must share a shape (K+1, M, P), got {theta.shape} "
            f"and {grad.shape}"
        )
    if U.ndim != 2 or U.shape[0] != theta.shape[2]:
        raise ValueError(
            f"basis must have shape (P={theta.shape[2]}, k), got {U.shape}"
        )
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(grad))):
        raise ValueError("theta and grad must be finite (drop diverged replicas first)")
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, got {record_every}")
    K1, M, P = theta.shape
    eta = np.broadcast_to(np.asarray(lr, dtype=np.float64), (M,))
    z = theta @ U  # (K+1, M, k)
    a = -eta[None, :, None] * (grad @ U)  # drift per step at the snapshots
    abar = 0.5 * (a[1:] + a[:-1])
    dz = z[1:] - z[:-1]
    eps = dz - record_every * a[:-1]  # pre-point (Euler) residual: unbiased at r = 1
    Q = np.einsum("kmi,kmj->ij", eps, eps) / (record_every * eps.shape[0] * M)
    Qi = np.linalg.inv(Q)
    inc = 2.0 * np.einsum("kmi,ij,kmj->km", abar, Qi, dz)
    s_med = np.concatenate([np.zeros((1, M)), np.cumsum(inc, axis=0)])
    s_sys = np.stack([-gaussian_fit_log_density(z[t])[0] for t in range(K1)])
    d_sys = s_sys[-1] - s_sys[0]
    return {
        "delta_s_sys": d_sys,
        "delta_s_medium": s_med[-1],
        "delta_s_tot": d_sys + s_med[-1],
        "s_sys_path": s_sys,
        "s_medium_path": s_med,
        "Q": Q,
        "z": z,
    }


def record_distance_from_init(
    trainer,
    n_steps: int,
    n_records: int = 40,
    *,
    desc: str = "long SGD run",
    cache=None,
    name: str = "distance_from_init",
    params: "dict | None" = None,
) -> dict:
    """Train and record R_m(t) = ||theta_m(t) - theta_m(0)|| at log-spaced steps.

    Parameters
    ----------
    trainer : EnsembleTrainer
    n_steps : int >= 10, total SGD steps
    n_records : int >= 4, number of log-spaced record times in [1, n_steps]
    cache : thermo_nb.runtime.ResultCache, optional
        Makes the run resumable: the trainer state and the records so far are checkpointed
        at every record time (atomically), and a re-run with the same ``(name, params)``
        continues from the last one with bit-identical results on CPU.  ``params`` must
        describe everything that defines the run (architecture, data, lr, seeds, n_steps).

    Returns
    -------
    dict: ``steps (K,)``, ``R (K, M)``, ``loss (K, M)`` (full training loss), ``diverged (M,)``.
    """
    from ..runtime import ResultCache, run_resumable

    if n_steps < 10 or n_records < 4:
        raise ValueError(
            f"need n_steps >= 10 and n_records >= 4, got {n_steps}, {n_records}"
        )
    rec = np.unique(np.round(np.geomspace(1, n_steps, n_records)).astype(int))
    bar = progress(total=n_steps, desc=desc)
    synced = [False]  # the trainer holds the state's parameters (False after a resume)

    def init():
        return {
            "trainer": trainer.state_dict(),
            "theta0": trainer.flat_params().clone(),
            "done": 0,
            "R": [],
            "loss": [],
        }

    def advance(state, i):
        if not synced[0]:
            trainer.load_state_dict(state["trainer"])
            bar.update(state["done"] - bar.n)
            synced[0] = True
        while state["done"] < rec[i]:
            trainer.step()
            state["done"] += 1
            bar.update(1)
        state["R"].append(
            (trainer.flat_params() - state["theta0"].to(trainer.flat_params().device))
            .norm(dim=1)
            .double()
            .cpu()
            .numpy()
        )
        state["loss"].append(trainer.full_loss().double().cpu().numpy())
        state["trainer"] = trainer.state_dict()
        return state

    key = dict(params or {}, n_steps=n_steps, n_records=n_records)
    if cache is None:  # same code path, checkpoints off
        cache = ResultCache(".", enabled=False)
    state = run_resumable(
        cache,
        name,
        key,
        init,
        advance,
        len(rec),
        checkpoint_every=1,
        show_progress=False,
    )
    if not synced[0]:  # finished result loaded from the cache
        trainer.load_state_dict(state["trainer"])
    bar.close()
    return {
        "steps": rec,
        "R": np.stack(state["R"]),
        "loss": np.stack(state["loss"]),
        "diverged": trainer.diverged.cpu().numpy().copy(),
    }
