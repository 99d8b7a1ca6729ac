r"""Stationary statistics of a scale-invariant ensemble for the ideal-gas tests.

:func:`record_si_gas` drives a :class:`~thermo_nb.training.sphere.SphereSGD` ensemble (one
replica per hyperparameter grid point; protocols ``fixed_elr``, ``fixed_lr``,
``fixed_sphere``) and records what the ideal-gas paper (arXiv:2511.07308, ``train.py``)
logs: the squared norm, the training loss, the norm after each step before projection
(pressure), snapshots of the SI weights for the entropy, and at a few times the
minibatch-gradient noise, converted to the unit sphere:

.. math::

    \sigma^2 = \frac{r^2\,\mathbb E\|g_i - g\|^2}{D-1}, \qquad
    G = r^2\big(\mathbb E\|g_i-g\|^2 + \|g\|^2\big)

(the paper's ``sigma_sq = stoch_grad_rms**2 * mean_radius**2 / (D-1)``; the minibatch
covariance already contains the 1/B factor).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["record_si_gas"]


def _block_stats(blocks: np.ndarray):
    """Mean and batch-means standard error over the last axis (equal-size blocks)."""
    n = blocks.shape[-1]
    return blocks.mean(-1), blocks.std(-1, ddof=1) / math.sqrt(n)


def record_si_gas(
    trainer,
    n_steps: int,
    burn_in: int,
    *,
    n_snapshots: int = 200,
    n_noise_checks: int = 4,
    noise_batches: int = 16,
    n_history: int = 100,
    n_blocks: int = 10,
    seed: int = 0,
) -> dict:
    r"""Train ``trainer`` for ``n_steps`` and record its stationary statistics.

    Parameters
    ----------
    trainer : SphereSGD
        The ensemble (``trainer.lr`` is the (effective) learning rate of each replica).
    n_steps, burn_in : int
        Total steps; statistics use the last ``n_steps - burn_in`` steps (the window).
    n_snapshots : int
        SI-weight snapshots per replica, evenly spaced over the window.
    n_noise_checks : int
        Times in the window at which the gradient noise is measured.
    noise_batches : int
        Independent minibatch gradients per check (the paper: 4000).
    n_history : int
        Log-spaced record times of :math:`r^2` and the loss (relaxation curves).
    n_blocks : int
        Blocks for batch-means standard errors of time averages.
    seed : int
        Seed of the noise-measurement minibatches (a separate stream).

    Returns
    -------
    dict of numpy arrays (one entry per replica)
        ``r2``, ``r2_se``, ``loss``, ``loss_se``, ``radius_after_step`` (mean norm after
        the step, before projection) and its ``_se``, ``sigma_sq``, ``grad_sq``,
        ``sigma_sq_se``, ``grad_sq_se`` (spread over checks), ``drift_z`` and
        ``drift_rel`` (max over :math:`r^2` and loss of the first-half/second-half drift),
        ``snapshots`` ``(M, n_snapshots, D)`` float32, ``history_steps``,
        ``history_r2``, ``history_loss``, ``dim``, ``diverged``.

    Notes
    -----
    Batch-means errors: the window is cut into ``n_blocks`` equal blocks; the standard
    error of a time average is the spread of block means over :math:`\sqrt{n_\text{blocks}}`.
    """
    if not 0 <= burn_in < n_steps:
        raise ValueError(f"burn_in must be in [0, n_steps), got {burn_in}")
    window = n_steps - burn_in
    n_blocks = max(2, min(n_blocks, window))
    block_len = window // n_blocks
    start = n_steps - block_len * n_blocks  # drop the remainder at the window's start
    m = trainer.n_replicas
    dim = int(trainer.flat_si_params().shape[1])
    sums = {k: np.zeros((m, n_blocks)) for k in ("r2", "loss", "after")}
    snap_at = set(
        (start + np.linspace(0, n_steps - start - 1, n_snapshots)).round().astype(int)
    )
    check_at = set(
        (start + np.linspace(0, n_steps - start - 1, n_noise_checks))
        .round()
        .astype(int)
    )
    hist_at = set(
        np.unique(np.geomspace(1, n_steps, n_history).round().astype(int) - 1)
    )
    snaps, noise, h_steps, h_r2, h_loss = [], [], [], [], []
    gen = torch.Generator().manual_seed(10_007 + int(seed))
    for t in range(n_steps):
        losses = trainer.step()
        after = trainer.last_radius.detach().double()
        r2 = trainer.si_norm().double() ** 2
        if t in hist_at:
            h_steps.append(t + 1)
            h_r2.append(r2.cpu().numpy())
            h_loss.append(losses.double().cpu().numpy())
        if t >= start:
            b = (t - start) // block_len
            sums["r2"][:, b] += r2.cpu().numpy()
            sums["loss"][:, b] += losses.double().cpu().numpy()
            sums["after"][:, b] += after.cpu().numpy()
            if t in snap_at:
                snaps.append(trainer.flat_si_params().float().cpu())
            if t in check_at:
                st = trainer.gradient_statistics(noise_batches, generator=gen)
                rr = r2.cpu().numpy()
                noise.append(
                    (
                        rr * st["stoch_grad_rms"] ** 2 / (dim - 1),
                        rr * (st["stoch_grad_rms"] ** 2 + st["full_grad_norm"] ** 2),
                    )
                )
    out = {}
    drift_z, drift_rel = [], []
    for key in ("r2", "loss", "after"):
        blocks = sums[key] / block_len
        mean, se = _block_stats(blocks)
        name = {"after": "radius_after_step"}.get(key, key)
        out[name], out[name + "_se"] = mean, se
        if key in ("r2", "loss"):
            h = n_blocks // 2
            m1, s1 = _block_stats(blocks[:, :h])
            m2, s2 = _block_stats(blocks[:, h:])
            drift = np.abs(m2 - m1)
            drift_z.append(drift / np.maximum(np.sqrt(s1**2 + s2**2), 1e-300))
            drift_rel.append(drift / np.maximum(np.abs(mean), 1e-300))
    sig = np.array([n[0] for n in noise])
    gsq = np.array([n[1] for n in noise])
    k = max(len(noise), 1)
    out.update(
        sigma_sq=sig.mean(0),
        sigma_sq_se=sig.std(0, ddof=1) / math.sqrt(k) if k > 1 else np.nan * sig[0],
        grad_sq=gsq.mean(0),
        grad_sq_se=gsq.std(0, ddof=1) / math.sqrt(k) if k > 1 else np.nan * gsq[0],
        drift_z=np.maximum(*drift_z),
        drift_rel=np.maximum(*drift_rel),
        snapshots=torch.stack(snaps, 1).numpy(),
        history_steps=np.asarray(h_steps),
        history_r2=np.stack(h_r2, 1),
        history_loss=np.stack(h_loss, 1),
        dim=dim,
        diverged=trainer.diverged.cpu().numpy().copy(),
        lr=trainer.lr.double().cpu().numpy(),
        weight_decay=trainer.weight_decay.double().cpu().numpy(),
        radius=trainer.radius.double().cpu().numpy(),
        momentum=trainer.momentum.double().cpu().numpy(),
    )
    return out
