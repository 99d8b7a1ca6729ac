r"""Two-dimensional toy datasets with their exact densities (for grid quadrature).

Each dataset is a mixture of isotropic Gaussians, so its log-density is known in closed
form and its entropy follows by quadrature on a grid
(:mod:`thermo_nb.estimators.grid_quadrature`).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "eight_gaussians_centres",
    "sample_eight_gaussians",
    "eight_gaussians_log_density",
    "sample_gaussian",
    "gaussian_log_density_isotropic",
]


def eight_gaussians_centres(radius: float = 2.0, dtype=torch.float64) -> torch.Tensor:
    """Centres of the 8-Gaussians dataset: equally spaced on a circle, shape (8, 2)."""
    ang = torch.arange(8, dtype=dtype) * (2 * math.pi / 8)
    return radius * torch.stack([torch.cos(ang), torch.sin(ang)], dim=-1)


def sample_eight_gaussians(
    n: int,
    radius: float = 2.0,
    std: float = 0.25,
    generator: "torch.Generator | None" = None,
    dtype=torch.float64,
) -> torch.Tensor:
    r"""Draw ``n`` points from the 8-Gaussians mixture.

    Parameters
    ----------
    n : int
        Number of points.
    radius : float
        Radius of the circle of centres.
    std : float
        Standard deviation of every component (isotropic).
    generator : torch.Generator, optional
    dtype : torch dtype

    Returns
    -------
    torch.Tensor, shape (n, 2)

    Notes
    -----
    :math:`p^*(x) = \frac18\sum_{k=0}^{7}\mathcal N(x; r(\cos\frac{k\pi}4,
    \sin\frac{k\pi}4), s^2 I)` (the toy set of Nijkamp et al., AAAI 2020).
    """
    c = eight_gaussians_centres(radius, dtype)
    k = torch.randint(0, 8, (n,), generator=generator)
    return c[k] + std * torch.randn(n, 2, generator=generator, dtype=dtype)


def eight_gaussians_log_density(
    x: torch.Tensor, radius: float = 2.0, std: float = 0.25
) -> torch.Tensor:
    r"""Exact log-density of the 8-Gaussians mixture at points ``x`` (shape (..., 2)).

    Parameters
    ----------
    x : torch.Tensor, shape (..., 2)
    radius, std : float
        As in :func:`sample_eight_gaussians`.

    Returns
    -------
    torch.Tensor, shape (...)

    Notes
    -----
    :math:`\ln p^*(x) = \mathrm{logsumexp}_k[-|x-c_k|^2/(2s^2)] - \ln 8 - \ln(2\pi s^2)`.
    """
    c = eight_gaussians_centres(radius, x.dtype).to(x.device)
    d2 = ((x[..., None, :] - c) ** 2).sum(-1)
    return (
        torch.logsumexp(-d2 / (2 * std**2), dim=-1)
        - math.log(8.0)
        - math.log(2 * math.pi * std**2)
    )


def sample_gaussian(
    n: int,
    mean,
    std: float = 1.0,
    generator: "torch.Generator | None" = None,
    dtype=torch.float64,
) -> torch.Tensor:
    """Draw ``n`` points from :math:`\\mathcal N(\\mathrm{mean}, \\mathrm{std}^2 I)`.

    Parameters
    ----------
    n : int
    mean : sequence of float, length d
    std : float
    generator : torch.Generator, optional
    dtype : torch dtype

    Returns
    -------
    torch.Tensor, shape (n, d)
    """
    m = torch.as_tensor(mean, dtype=dtype)
    return m + std * torch.randn(n, m.numel(), generator=generator, dtype=dtype)


def gaussian_log_density_isotropic(x: torch.Tensor, mean, std: float = 1.0):
    r"""Log-density of :math:`\mathcal N(\mathrm{mean}, \mathrm{std}^2 I)` at ``x``.

    Parameters
    ----------
    x : torch.Tensor, shape (..., d)
    mean : tensor broadcastable to ``x``
    std : float

    Returns
    -------
    torch.Tensor, shape (...)

    Notes
    -----
    :math:`-|x-\mu|^2/(2s^2) - \tfrac d2\ln(2\pi s^2)`.
    """
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    d = x.shape[-1]
    return -((x - m) ** 2).sum(-1) / (2 * std**2) - 0.5 * d * math.log(
        2 * math.pi * std**2
    )
