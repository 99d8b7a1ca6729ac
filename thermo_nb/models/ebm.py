r"""Energy-based models :math:`p_\theta(x) = e^{-E_\theta(x)}/Z_\theta`, batched over an
ensemble of parameter vectors.

Three energies:

- :func:`mlp_energy`: an MLP energy (SiLU) plus a fixed confining quadratic
  :math:`|x|^2/(2 s_b^2)`, so :math:`Z_\theta` is finite for every :math:`\theta`; parameters
  carry a leading replica axis ``R`` and inputs have shape ``(R, N, d)``, so one call
  evaluates an ensemble of ``R`` networks (batched matrix products, no Python loop);
- :func:`quadratic_energy`: the Gaussian energy :math:`\tfrac12(x-\mu)^TP(x-\mu)`;
- :func:`exp_family_energy`: a small exponential family
  :math:`E_\eta(x) = -\eta\cdot T(x) + b(x)` with a handful of sufficient statistics.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "init_mlp_energy",
    "mlp_energy",
    "quadratic_energy",
    "EXP_FAMILIES",
    "exp_family_statistics",
    "exp_family_energy",
]


def init_mlp_energy(
    n_replicas: int,
    hidden: int = 32,
    depth: int = 2,
    dim: int = 2,
    generator: "torch.Generator | None" = None,
    same_init: bool = True,
    dtype=torch.float64,
) -> list[torch.Tensor]:
    """Initial parameters of ``n_replicas`` MLP energies ``dim -> hidden^depth -> 1``.

    Parameters
    ----------
    n_replicas : int
        Ensemble size R (leading axis of every tensor).
    hidden : int
        Width of the hidden layers.
    depth : int
        Number of hidden layers (>= 1).
    dim : int
        Input dimension.
    generator : torch.Generator, optional
    same_init : bool
        ``True``: every replica starts from the same :math:`\\theta_0` (Parsi's ensemble of
        computers running the same protocol; only the SGD and sampler noise differ).
    dtype : torch dtype

    Returns
    -------
    list of torch.Tensor
        ``[W1, b1, ..., W_out, b_out]`` with ``W`` of shape (R, fan_in, fan_out) and ``b``
        of shape (R, 1, fan_out); LeCun-normal weights, zero biases.
    """
    sizes = [dim] + [hidden] * depth + [1]
    params = []
    reps = 1 if same_init else n_replicas
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = torch.randn(reps, fan_in, fan_out, generator=generator, dtype=dtype)
        w = w / math.sqrt(fan_in)
        params += [
            w.expand(n_replicas, -1, -1).clone(),
            torch.zeros(n_replicas, 1, fan_out, dtype=dtype),
        ]
    return params


def mlp_energy(params, x: torch.Tensor, base_std: float = 1.5) -> torch.Tensor:
    r"""Energies of an ensemble of MLPs, :math:`E_{\theta_r}(x_{r,i})`.

    Parameters
    ----------
    params : list of torch.Tensor
        From :func:`init_mlp_energy` (leading axis R).
    x : torch.Tensor, shape (R, N, d)
        ``N`` points per replica (use ``expand`` to evaluate one grid for all replicas).
    base_std : float
        Scale :math:`s_b` of the confining term.

    Returns
    -------
    torch.Tensor, shape (R, N)

    Notes
    -----
    :math:`E_\theta(x) = f_\theta(x) + |x|^2/(2 s_b^2)` with :math:`f_\theta` the MLP
    (SiLU hidden units).  The quadratic term makes :math:`e^{-E}` integrable whatever
    the network does at large :math:`|x|`.
    """
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        h = torch.baddbmm(b, h, w)
        if i < n_layers - 1:
            h = F.silu(h)
    return h.squeeze(-1) + (x**2).sum(-1) / (2 * base_std**2)


def quadratic_energy(x: torch.Tensor, mean, precision) -> torch.Tensor:
    r"""Gaussian energy :math:`E(x) = \tfrac12 (x-\mu)^T P (x-\mu)`.

    Parameters
    ----------
    x : torch.Tensor, shape (..., d)
    mean : tensor broadcastable to ``x``
    precision : float or tensor of shape (d, d)

    Returns
    -------
    torch.Tensor, shape (...)

    Notes
    -----
    :math:`p = \mathcal N(\mu, P^{-1})`, :math:`\ln Z = \tfrac d2\ln 2\pi -
    \tfrac12\ln\det P`.
    """
    dx = x - mean
    P = torch.as_tensor(precision, dtype=x.dtype, device=x.device)
    if P.ndim == 0:
        return 0.5 * P * (dx**2).sum(-1)
    return 0.5 * torch.einsum("...i,ij,...j->...", dx, P, dx)


EXP_FAMILIES = {
    "mean": "T(x) = x, b(x) = |x|^2/(2 sigma^2): N(sigma^2 eta, sigma^2 I)",
    "mean_precision": "T(x) = (x_1, x_2, -|x|^2/2), b = 0: N(eta_12/eta_3, I/eta_3)",
}


def exp_family_statistics(x: torch.Tensor, family: str = "mean") -> torch.Tensor:
    """Sufficient statistics :math:`T(x)` of the family, shape (..., K).

    Parameters
    ----------
    x : torch.Tensor, shape (..., 2)
    family : {"mean", "mean_precision"}
        See :data:`EXP_FAMILIES`.

    Returns
    -------
    torch.Tensor, shape (..., K) with K = 2 or 3.
    """
    if family == "mean":
        return x
    if family == "mean_precision":
        return torch.cat([x, -0.5 * (x**2).sum(-1, keepdim=True)], dim=-1)
    raise ValueError(f"family must be one of {sorted(EXP_FAMILIES)}, got {family!r}")


def exp_family_energy(
    eta: torch.Tensor, x: torch.Tensor, family: str = "mean", sigma: float = 1.0
) -> torch.Tensor:
    r"""Energy of a small exponential family, :math:`E_\eta(x) = -\eta\cdot T(x) + b(x)`.

    Parameters
    ----------
    eta : torch.Tensor, shape (..., K)
        Natural parameters (broadcast against the leading axes of ``x`` after adding a
        point axis: ``eta`` of shape (R, K) with ``x`` of shape (R, N, 2)).
    x : torch.Tensor, shape (..., N, 2)
    family : {"mean", "mean_precision"}
    sigma : float
        Fixed scale of the "mean" family.

    Returns
    -------
    torch.Tensor, shape (..., N)

    Notes
    -----
    Maximum likelihood by contrastive divergence: :math:`\nabla_\eta\,\mathrm{NLL} =
    \langle T\rangle_{p_\eta} - \langle T\rangle_{\rm data}` (Song & Kingma 2021), linear
    in the samples, so a whole ensemble is trained without autograd.
    """
    t = exp_family_statistics(x, family)
    e = -(t * eta[..., None, :]).sum(-1)
    if family == "mean":
        e = e + (x**2).sum(-1) / (2 * sigma**2)
    return e
