r"""Exact (quadrature) thermodynamics of 2-D energy-based models on a uniform grid.

Every function takes log-densities or energies **on the grid points** as torch tensors whose
last axis runs over the ``G = n * n`` points of :func:`make_grid_2d`; leading axes (for
example an ensemble of parameter vectors, shape ``(R, G)``) are kept, so one call evaluates
a whole ensemble.  Integrals are midpoint sums :math:`\int f\,dx \approx h^2\sum_g f(x_g)`,
which for smooth integrands that decay inside the box converge faster than any power of
the spacing ``h``; the truncation error is the mass outside the box.  All results are in
nats.

Notation (Parsi, arXiv 2310.19802, Eq. 1): :math:`p_\theta(x) = e^{-E_\theta(x)}/Z_\theta
= e^{-\phi_\theta(x)}`, so :math:`\phi_\theta = E_\theta + \ln Z_\theta` is the surprisal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "Grid2D",
    "make_grid_2d",
    "grid_log_partition",
    "grid_log_density",
    "grid_entropy",
    "grid_cross_entropy",
    "grid_kl_divergence",
    "grid_expectation",
    "grid_mixture_log_density",
    "grid_conditional_l_info",
    "grid_sample",
]


@dataclass(frozen=True)
class Grid2D:
    """A uniform ``n x n`` grid of cell centres on the box ``[-limit, limit]^2``.

    Attributes
    ----------
    axis : torch.Tensor, shape (n,)
        Cell centres along one axis.
    points : torch.Tensor, shape (n * n, 2)
        All cell centres (row-major: ``points[i * n + j] = (axis[i], axis[j])``).
    cell_area : float
        :math:`h^2`, the quadrature weight of every point.
    limit : float
    n : int
    """

    axis: torch.Tensor
    points: torch.Tensor
    cell_area: float
    limit: float
    n: int

    @property
    def log_cell_area(self) -> float:
        return math.log(self.cell_area)

    def image(self, values: torch.Tensor) -> torch.Tensor:
        """Reshape grid values ``(..., G)`` to images ``(..., n, n)`` (first axis = x1)."""
        return values.reshape(*values.shape[:-1], self.n, self.n)


def make_grid_2d(limit: float, n: int, dtype=torch.float64, device=None) -> Grid2D:
    r"""Uniform midpoint grid on ``[-limit, limit]^2``.

    Parameters
    ----------
    limit : float
        Half-width of the box (> 0).
    n : int
        Points per axis (>= 2).
    dtype, device : torch dtype and device of the points.

    Returns
    -------
    Grid2D

    Notes
    -----
    Spacing :math:`h = 2\,\mathrm{limit}/n`; points at :math:`-\mathrm{limit} + (i+1/2)h`.

    Examples
    --------
    >>> g = make_grid_2d(3.0, 60)
    >>> tuple(g.points.shape), round(g.cell_area, 4)
    ((3600, 2), 0.01)
    """
    if not (isinstance(limit, (int, float)) and math.isfinite(limit) and limit > 0):
        raise ValueError(f"limit must be a finite number > 0, got {limit!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    h = 2.0 * limit / n
    axis = -limit + h * (torch.arange(n, dtype=dtype, device=device) + 0.5)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([a.reshape(-1), b.reshape(-1)], dim=-1)
    return Grid2D(axis=axis, points=points, cell_area=h * h, limit=float(limit), n=n)


def _area(cell_area) -> float:
    if isinstance(cell_area, Grid2D):
        cell_area = cell_area.cell_area
    if not (math.isfinite(cell_area) and cell_area > 0):
        raise ValueError(f"cell_area must be a finite number > 0, got {cell_area!r}")
    return float(cell_area)


def grid_log_partition(energy: torch.Tensor, cell_area) -> torch.Tensor:
    r"""Log normaliser :math:`\ln Z_\theta = \ln\int e^{-E_\theta(x)}dx` by quadrature.

    Parameters
    ----------
    energy : torch.Tensor, shape (..., G)
        :math:`E_\theta` on the grid points (leading axes: ensemble members).
    cell_area : float or Grid2D
        Quadrature weight :math:`h^2`.

    Returns
    -------
    torch.Tensor, shape (...)
        :math:`\ln Z = \mathrm{logsumexp}_g(-E_g) + \ln h^2`.

    Notes
    -----
    Free energy at temperature 1: :math:`F_\theta = -\ln Z_\theta` (Parsi Eq. 5).
    """
    return torch.logsumexp(-energy, dim=-1) + math.log(_area(cell_area))


def grid_log_density(energy: torch.Tensor, cell_area) -> torch.Tensor:
    r"""Normalised log-density :math:`\ln p_\theta = -\phi_\theta = -E_\theta - \ln Z_\theta`.

    Parameters
    ----------
    energy : torch.Tensor, shape (..., G)
    cell_area : float or Grid2D

    Returns
    -------
    torch.Tensor, shape (..., G)
        :math:`-\phi_\theta(x_g)` (Parsi Eq. 1); :math:`h^2\sum_g e^{\ln p_g} = 1`.

    Notes
    -----
    Normalised on the grid, so the box truncation is absorbed into :math:`Z`.
    """
    return -energy - grid_log_partition(energy, cell_area)[..., None]


def grid_expectation(log_p: torch.Tensor, f: torch.Tensor, cell_area) -> torch.Tensor:
    r"""Average :math:`\langle f\rangle_p = \int p f\,dx` by quadrature.

    Parameters
    ----------
    log_p : torch.Tensor, shape (..., G)
        Normalised log-density on the grid.
    f : torch.Tensor, broadcastable to ``log_p``
    cell_area : float or Grid2D

    Returns
    -------
    torch.Tensor, shape (...)

    Notes
    -----
    :math:`h^2 \sum_g e^{\ln p_g} f_g`; points where :math:`p = 0` contribute nothing even
    when ``f`` is infinite there.
    """
    p = torch.exp(log_p)
    prod = torch.where(p > 0, p * f, torch.zeros((), dtype=p.dtype, device=p.device))
    return prod.sum(-1) * _area(cell_area)


def grid_entropy(log_p: torch.Tensor, cell_area) -> torch.Tensor:
    r"""Shannon (differential) entropy :math:`S[p] = -\int p\ln p\,dx` in nats.

    Parameters
    ----------
    log_p : torch.Tensor, shape (..., G)
        Normalised log-density on the grid (e.g. from :func:`grid_log_density`).
    cell_area : float or Grid2D

    Returns
    -------
    torch.Tensor, shape (...)

    Notes
    -----
    Parsi Table 3.1, :math:`S_X = \langle -\ln p\rangle_p`.  For
    :math:`\mathcal N(\mu,\Sigma)` in 2-D the exact value is
    :math:`\ln(2\pi e) + \tfrac12\ln\det\Sigma`.
    """
    return grid_expectation(log_p, -log_p, cell_area)


def grid_cross_entropy(log_q: torch.Tensor, log_p: torch.Tensor, cell_area):
    r"""Cross-entropy :math:`H(q, p) = -\int q\ln p\,dx` (the exact NLL of data ``q``).

    Parameters
    ----------
    log_q : torch.Tensor, shape (..., G)
        Log-density of the distribution that is averaged over (the data, or
        :math:`p(x|\theta)` for Parsi's partially averaged marginal entropy).
    log_p : torch.Tensor, broadcastable to ``log_q``
        Log-density whose surprisal is averaged (the model, or the ensemble marginal).
    cell_area : float or Grid2D

    Returns
    -------
    torch.Tensor
        :math:`H(q,p) = S[q] + \mathrm{KL}(q\|p)`, in nats.

    Notes
    -----
    With ``q = p(x|theta_t)`` and ``p = p_t(x)`` this is Parsi's PA marginal entropy
    :math:`S_X(\theta_t) = \langle -\ln p_t(x)\rangle_{p(x|\theta_t)}` (Eq. 44).
    """
    return grid_expectation(log_q, -log_p, cell_area)


def grid_kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor, cell_area):
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p\|q) = \int p\ln(p/q)\,dx`.

    Parameters
    ----------
    log_p, log_q : torch.Tensor, broadcastable shapes (..., G)
        Normalised log-densities on the same grid.
    cell_area : float or Grid2D

    Returns
    -------
    torch.Tensor, shape (...), in nats (>= 0 up to rounding).

    Notes
    -----
    For Gaussians :math:`\mathrm{KL} = \tfrac12[\mathrm{tr}(\Sigma_q^{-1}\Sigma_p)
    + (\mu_q-\mu_p)^T\Sigma_q^{-1}(\mu_q-\mu_p) - d + \ln(\det\Sigma_q/\det\Sigma_p)]`.
    """
    return grid_expectation(log_p, log_p - log_q, cell_area)


def grid_mixture_log_density(log_p: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""Log-density of the equal-weight mixture (the ensemble marginal :math:`p_t(x)`).

    Parameters
    ----------
    log_p : torch.Tensor, shape (R, ..., G)
        Normalised log-densities :math:`\ln p(x|\theta_r)` of ``R`` ensemble members.
    dim : int
        The ensemble axis.

    Returns
    -------
    torch.Tensor
        :math:`\ln p_t(x) = \ln\frac1R\sum_r p(x|\theta_r)`, the ensemble axis removed.

    Notes
    -----
    Parsi Sec. 3.3: the ensemble view's marginal of the model subsystem X over an
    ensemble of R computers, :math:`p_t(x) = \langle p(x|\theta)\rangle_{p_t(\theta)}`,
    with :math:`p_t(\theta)` replaced by the empirical distribution of the R replicas.
    """
    return torch.logsumexp(log_p, dim=dim) - math.log(log_p.shape[dim])


def grid_conditional_l_info(log_p: torch.Tensor, cell_area) -> torch.Tensor:
    r"""Conditional L-info :math:`I_{X;\Theta}(\theta_r)` (Parsi Eq. 25) of every replica.

    Parameters
    ----------
    log_p : torch.Tensor, shape (R, G)
        Normalised log-densities :math:`\ln p(x|\theta_r)` of the R ensemble members.
    cell_area : float or Grid2D

    Returns
    -------
    torch.Tensor, shape (R,)
        :math:`I_{X;\Theta}(\theta_r) = \int p(x|\theta_r)\ln\frac{p(x|\theta_r)}{p_t(x)}dx
        = \mathrm{KL}(p_{\theta_r}\|p_t)`.  Their mean is the ensemble L-info
        :math:`I_{X;\Theta}(t)` (Eq. 16) of the empirical R-member ensemble, which is
        at most :math:`\ln R`.

    Notes
    -----
    Equivalently :math:`S_X(\theta_r) - S_{X|\Theta}(\theta_r)`, the PA marginal minus the
    PA conditional entropy (Eq. 44).

    References
    ----------
    S. S. Parsi, "Stochastic thermodynamics of learning parametric probabilistic models",
    arXiv 2310.19802, Eqs. 16, 25 and 44.
    """
    if log_p.ndim != 2:
        raise ValueError(f"log_p must have shape (R, G), got {tuple(log_p.shape)}")
    mix = grid_mixture_log_density(log_p, dim=0)
    return grid_kl_divergence(log_p, mix[None, :], cell_area)


def grid_sample(
    log_p: torch.Tensor, grid: Grid2D, n: int, generator=None
) -> torch.Tensor:
    r"""Draw ``n`` points from the piecewise-constant density on the grid's cells.

    Parameters
    ----------
    log_p : torch.Tensor, shape (G,)
        Log-density (normalised or not) on the grid points.
    grid : Grid2D
    n : int
        Number of samples.
    generator : torch.Generator, optional
        A CPU generator (the draw is made on the CPU and moved to the grid's device).

    Returns
    -------
    torch.Tensor, shape (n, 2)

    Notes
    -----
    A cell is drawn with probability :math:`\propto p(x_g)` and the point is uniform in
    the cell; the law differs from :math:`p` by :math:`O(h^2)`, so chapters follow it
    with a few exact (MALA) steps when they need exact samples.
    """
    w = torch.softmax(log_p.detach().reshape(-1).cpu(), dim=0)
    idx = torch.multinomial(w, n, replacement=True, generator=generator)
    h = 2 * grid.limit / grid.n
    u = torch.rand(n, 2, generator=generator, dtype=grid.points.dtype) - 0.5
    return (grid.points.cpu()[idx] + h * u).to(grid.points.device)
