r"""Exact k-nearest-neighbour entropy and mutual-information estimators, in nats.

One engine, :func:`knn_distances`, finds exact k-th neighbour distances; the estimators
are thin formulas on top of it:

* :func:`kl_entropy` -- Kozachenko-Leonenko entropy (Euclidean or max-norm ball);
* :func:`ksg_mutual_info` -- Kraskov-Stoegbauer-Grassberger mutual information (algorithm 1);
* :func:`knn_graph_entropy` -- the k-NN-graph-length entropy of the free-energy paper
  (arXiv 2505.23489, ``free_energy/entropy_logger.py``);
* :func:`sphere_kl_entropy` -- the ideal-gas paper's KL entropy in hyperspherical angles with
  the Jacobian correction (arXiv 2511.07308, ``entropy.py``).

The exact neighbour search they share is :mod:`thermo_nb.neighbors.search`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..neighbors.search import (
    as_sample_tensor,
    check_backend,
    check_k,
    check_metric,
    count_strictly_within,
    knn_distances,
    kth_distances_without_zeros,
    rescale_extreme,
    sorted_knn_distances,
)

__all__ = [
    "SphereEntropy",
    "hyperspherical_angles",
    "kl_entropy",
    "knn_distances",
    "knn_graph_entropy",
    "ksg_mutual_info",
    "sphere_kl_entropy",
    "uniform_sphere_entropy",
]

_EULER_GAMMA = 0.5772156649015329


def _log_unit_ball_volume(d: int, metric: str) -> float:
    """log volume of the unit ball in R^d: Euclidean pi^(d/2)/Gamma(d/2+1), max-norm 2^d."""
    if metric == "euclidean":
        return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)
    return d * math.log(2.0)


def _digamma(v):
    from scipy.special import digamma

    return digamma(v)


def kl_entropy(x, k=3, metric="euclidean", device=None, backend="auto") -> float:
    r"""Kozachenko-Leonenko k-NN estimate of the differential entropy, in nats.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (N, d) or (N,)
        Samples of a continuous distribution, one per row.  NaN/inf raise ``ValueError``.
    k : int
        Neighbour order, ``1 <= k < N`` (3 is the usual choice).
    metric : {"euclidean", "chebyshev"}
        Ball used for the local density.  ``"chebyshev"`` is the NPEET / KSG max-norm
        convention (unit-ball volume :math:`2^d`).
    device : {None, "auto", "cpu", "cuda"} or torch.device
        Compute device; ``None`` uses the input's device.
    backend : {"auto", "tree", "brute", "faiss"}
        Neighbour search of :func:`thermo_nb.neighbors.search.knn_distances`; every
        backend gives the same exact distances (``"faiss"``: Euclidean, CPU, needs
        ``pip install "thermo-nb[faiss]"``).  ``"auto"``: the one measured faster.

    Returns
    -------
    float
        Entropy estimate in nats.

    Notes
    -----
    With :math:`\epsilon_i` the distance from sample :math:`i` to its k-th neighbour,

    .. math:: \hat H = \psi(N) - \psi(k) + \log V_d + \frac dN \sum_{i=1}^N \log\epsilon_i,

    :math:`V_d = \pi^{d/2}/\Gamma(d/2+1)` (Euclidean) or :math:`2^d` (max-norm)
    [Kraskov et al. 2004, eq. (20)].  The estimator is consistent; at finite N it is biased,
    increasingly with d.

    Duplicates: if any sample has a zero k-th neighbour distance (exact duplicates), a
    ``RuntimeWarning`` is issued and uniform noise of amplitude ``1e-10 * max(1, max|x|)``
    per column (fixed seed) is added before estimating -- never a silent ``-inf``.

    References
    ----------
    L. F. Kozachenko and N. N. Leonenko, "Sample estimate of the entropy of a random
    vector", Probl. Peredachi Inf. 23(2), 9-16 (1987).
    A. Kraskov, H. Stoegbauer and P. Grassberger, "Estimating mutual information",
    Phys. Rev. E 69, 066138 (2004).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((5000, 2))
    >>> bool(abs(kl_entropy(x) - np.log(2 * np.pi * np.e)) < 0.05)   # true value: ln(2 pi e)
    True
    """
    metric = check_metric(metric)
    xt = as_sample_tensor(x, "x", device)
    n, d = xt.shape
    k = check_k(k, n)
    backend = check_backend(backend, metric, xt.device)
    (xt,), log_scale = rescale_extreme(xt)  # H(aX) = H(X) + d ln a
    _, eps = kth_distances_without_zeros(xt, k, metric, "kl_entropy", backend)
    constant = float(_digamma(n) - _digamma(k)) + _log_unit_ball_volume(d, metric)
    return constant + d * float(eps.log().mean()) + d * log_scale


def ksg_mutual_info(x, y, k=3, device=None, backend="auto") -> float:
    r"""Kraskov-Stoegbauer-Grassberger (algorithm 1) estimate of I(X;Y), in nats.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (N, d_x) or (N,)
    y : array_like or torch.Tensor, shape (N, d_y) or (N,)
        Paired samples (row i of x with row i of y).  NaN/inf raise ``ValueError``.
    k : int
        Neighbour order in the joint space, ``1 <= k < N``.
    device : {None, "auto", "cpu", "cuda"} or torch.device
    backend : {"auto", "tree", "brute"}
        Search of the joint max-norm neighbours (:func:`knn_distances`).  FAISS is not
        offered: its max-norm index (``METRIC_Linf``) measured 2.6x slower than the
        float64 brute force here (N = 20k, 20 dims: 11.5 vs 4.4 s on 2 cores).

    Returns
    -------
    float
        Mutual information estimate in nats (can be slightly negative near independence;
        it is not clipped).

    Notes
    -----
    With :math:`\epsilon_i` the max-norm distance to the k-th neighbour in the joint space
    :math:`z = (x, y)`, and :math:`n_x(i)` (:math:`n_y(i)`) the number of other samples
    *strictly* closer than :math:`\epsilon_i` in the x (y) marginal (max-norm),

    .. math:: \hat I = \psi(k) + \psi(N) - \langle \psi(n_x + 1) + \psi(n_y + 1) \rangle

    [Kraskov et al. 2004, eq. (8)].  Exact duplicates in the joint space follow the rule of
    :func:`kl_entropy` (warning + 1e-10 jitter).

    References
    ----------
    A. Kraskov, H. Stoegbauer and P. Grassberger, "Estimating mutual information",
    Phys. Rev. E 69, 066138 (2004).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(4000); y = 0.6 * x + 0.8 * rng.standard_normal(4000)
    >>> bool(abs(ksg_mutual_info(x, y) - (-0.5 * np.log(1 - 0.6**2))) < 0.05)
    True
    """
    import torch

    xt = as_sample_tensor(x, "x", device)
    yt = as_sample_tensor(y, "y", device if device is not None else xt.device)
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples (rows), "
            f"got {xt.shape[0]} and {yt.shape[0]}"
        )
    (xt, yt), _ = rescale_extreme(xt, yt)  # MI is invariant under a common scale
    n, dx = xt.shape
    k = check_k(k, n)
    backend = check_backend(backend, "chebyshev", xt.device)
    z, eps = kth_distances_without_zeros(
        torch.cat([xt, yt], dim=1), k, "chebyshev", "ksg_mutual_info", backend
    )
    xt, yt = z[:, :dx].contiguous(), z[:, dx:].contiguous()
    nx = count_strictly_within(xt, eps)
    ny = count_strictly_within(yt, eps)
    psi_x = _digamma((nx + 1).cpu().numpy().astype(np.float64))
    psi_y = _digamma((ny + 1).cpu().numpy().astype(np.float64))
    return float(_digamma(k) + _digamma(n) - np.mean(psi_x + psi_y))


def knn_graph_entropy(
    x, k=50, device=None, intrinsic_dim=None, backend="auto"
) -> float:
    r"""k-NN-graph-length entropy of the free-energy paper, in nats (additive constant dropped).

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (N, P)
        Samples, e.g. a window of N consecutive SGD iterates of P weights.
    k : int
        Number of graph edges per point *counting the zero self-distance*, as in the
        paper's code: the k smallest distances of each row of the full N x N distance
        matrix are summed, the first being the point itself.  ``2 <= k <= N``; the paper
        plots k = 50.
    device : {None, "auto", "cpu", "cuda"} or torch.device
    intrinsic_dim : int, optional
        The dimension :math:`d` of the formula.  Default: ``P`` (samples with a density in
        :math:`\mathbb R^P`).  For iterates on a sphere in :math:`\mathbb R^P` the paper
        uses ``P - 1``.
    backend : {"auto", "tree", "brute", "faiss"}
        Neighbour search of :func:`thermo_nb.neighbors.search.knn_distances`; every
        backend gives the same exact distances (``"faiss"``: Euclidean, CPU, needs
        ``pip install "thermo-nb[faiss]"``).  ``"auto"``: the one measured faster.

    Returns
    -------
    float
        :math:`S_K` in nats, up to the dropped additive constant (see Notes).

    Notes
    -----
    With :math:`\rho_{i,(j)}` the Euclidean distance from :math:`x_i` to its j-th nearest
    point of the window (:math:`\rho_{i,(1)} = 0`, itself) and :math:`\gamma = 1`,

    .. math:: L_K = \sum_{i=1}^N \sum_{j=1}^K \rho_{i,(j)}^{\gamma}, \qquad
              S_K = \frac d\gamma\left[\log L_K - \frac{d-\gamma}{d}\log N\right].

    This is the Beardwood-Halton-Hammersley / Hero-Michel graph-length estimator of the
    Renyi entropy of order :math:`\alpha = (d-\gamma)/d` (close to Shannon for large d):
    :math:`L_K/N^{\alpha} \to \beta_{K,\gamma,d}\int f^{\alpha}`, so
    :math:`S_K \to H_\alpha + (d/\gamma)\log\beta_{K,\gamma,d}`.  Like the paper
    (``free_energy/entropy_logger.py``, arXiv 2505.23489, sec. on entropy estimation), the
    unknown constant :math:`(d/\gamma)\log\beta` is dropped, so only differences of
    :math:`S_K` at equal (N, K, d) are meaningful; e.g. scaling the samples by s adds
    :math:`d\log s`.

    References
    ----------
    A. O. Hero and O. J. J. Michel, "Asymptotic theory of greedy approximations to minimal
    k-point random graphs", IEEE Trans. Inf. Theory 45(6), 1921-1938 (1999).
    "SGD as Free Energy Minimization", arXiv:2505.23489 (2025).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((1000, 5))
    >>> bool(abs(knn_graph_entropy(2 * x) - knn_graph_entropy(x) - 5 * np.log(2)) < 1e-9)
    True
    """
    xt = as_sample_tensor(x, "x", device)
    n, p = xt.shape
    k = check_k(k, n, lowest=2, allow_equal_n=True)
    backend = check_backend(backend, "euclidean", xt.device)
    if intrinsic_dim is None:
        d = p
    elif (
        isinstance(intrinsic_dim, bool)
        or not isinstance(intrinsic_dim, (int, np.integer))
        or intrinsic_dim < 2
    ):
        raise ValueError(
            f"intrinsic_dim must be None or an integer >= 2, got {intrinsic_dim!r}"
        )
    else:
        d = int(intrinsic_dim)
    gamma = 1.0
    # distances to the k-1 nearest *other* points; the self-distance 0 completes the K terms
    rho = sorted_knn_distances(xt, k - 1, "euclidean", backend=backend)
    graph_length = float((rho**gamma).sum())
    if graph_length <= 0.0:
        raise ValueError(
            "knn_graph_entropy: all k-NN distances are zero (identical samples)"
        )
    return (d / gamma) * (math.log(graph_length) - (d - gamma) / d * math.log(n))


class SphereEntropy(NamedTuple):
    """Result of :func:`sphere_kl_entropy` (all entropies in nats)."""

    sphere: float
    """Entropy of the direction w/|w| w.r.t. the surface measure of the unit sphere S^{D-1}."""
    full: float
    """``sphere + (D - 1) * log(mean_radius)``: entropy on the sphere of radius mean |w|."""
    angular: float
    """KL entropy of the hyperspherical angles (before the Jacobian correction)."""
    log_jacobian: float
    """Mean of sum_k (D-1-k) log sin(phi_k) over the samples (the correction term)."""
    mean_radius: float
    """Mean of |w| over the samples."""


def hyperspherical_angles(w):
    r"""Hyperspherical angles :math:`(\varphi_1, \dots, \varphi_{D-1})` of rows of ``w``.

    :math:`\varphi_k = \operatorname{atan2}(\sqrt{\sum_{j>k} w_j^2}, w_k)` for
    :math:`k < D-1` (in :math:`[0, \pi]`) and
    :math:`\varphi_{D-1} = \operatorname{atan2}(w_D, w_{D-1})` (in :math:`(-\pi, \pi]`).
    Takes and returns a float64 torch tensor of shape (N, D) -> (N, D-1).
    """
    import torch

    sq = w * w
    # tail[:, i] = sqrt(sum_{j > i} w_j^2), i = 0..D-2 (0-based)
    tail = torch.flip(torch.cumsum(torch.flip(sq, dims=[1]), dim=1), dims=[1])[
        :, 1:
    ].sqrt()
    phi = torch.atan2(tail, w[:, :-1])
    phi[:, -1] = torch.atan2(w[:, -1], w[:, -2])
    return phi


def sphere_kl_entropy(w, k=1, device=None) -> SphereEntropy:
    r"""The ideal-gas paper's entropy of weight directions: KL in hyperspherical angles.

    Parameters
    ----------
    w : array_like or torch.Tensor, shape (N, D), D >= 2
        Weight vectors (e.g. a queue of N snapshots of D scale-invariant weights).
    k : int
        Neighbour order of the KL estimator in angle space, ``1 <= k < N`` (the paper: 1).
    device : {None, "auto", "cpu", "cuda"} or torch.device

    Returns
    -------
    SphereEntropy
        Named tuple ``(sphere, full, angular, log_jacobian, mean_radius)``, nats.

    Notes
    -----
    Following ``entropy.py`` of arXiv 2511.07308 (the ideal-gas paper):

    1. angles :math:`\varphi \in \mathbb R^{D-1}` (:func:`hyperspherical_angles`);
    2. KL entropy of the angles, dimension :math:`m = D-1`, Euclidean distances
       :math:`\rho_i` to the k-th neighbour clipped at :math:`\geq 10^{-8}`:
       :math:`H = m\langle\log\rho_i\rangle + \tfrac m2\log\pi - \log\Gamma(\tfrac m2+1)
       + \log(N-1) - \psi(k)` (for k = 1 this is the paper's
       :math:`\log(N-1) + \gamma_E`; for k > 1 it differs from :math:`\psi(N) - \psi(k)`
       by O(1/N));
    3. Jacobian correction to the surface measure of :math:`S^{D-1}`:
       :math:`S_\text{sphere} = H + \frac1N\sum_i\sum_{k=1}^{D-2}(D-1-k)\log\sin\varphi_{i,k}`
       (:math:`\sin` clipped at :math:`\geq 10^{-8}`);
    4. :math:`S_\text{full} = S_\text{sphere} + (D-1)\log\bar r`, :math:`\bar r` the mean
       radius.

    A uniform distribution on :math:`S^{D-1}` has :math:`S_\text{sphere} =
    \log(2\pi^{D/2}/\Gamma(D/2))`.  The azimuth's periodicity is ignored, as in the paper.

    References
    ----------
    "Neural networks as an ideal gas" (weight decay as pressure), arXiv:2511.07308 (2025),
    code ``isadrtdinov/neural-nets-ideal-gas``, ``entropy.py``.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0).standard_normal((4000, 3))
    >>> s = sphere_kl_entropy(g / np.linalg.norm(g, axis=1, keepdims=True))
    >>> bool(abs(s.sphere - np.log(4 * np.pi)) < 0.1)   # uniform on S^2: log(4 pi)
    True
    """
    wt = as_sample_tensor(w, "w", device)
    n, big_d = wt.shape
    if big_d < 2:
        raise ValueError(
            f"w must have D >= 2 columns (points in R^D), got shape {tuple(wt.shape)}"
        )
    k = check_k(k, n)
    radius = wt.norm(dim=1)
    if bool((radius <= 0).any()):
        raise ValueError(
            "w contains zero vectors; their direction (and angles) are undefined"
        )
    phi = hyperspherical_angles(wt)
    m = big_d - 1
    rho = sorted_knn_distances(phi, k, "euclidean")[:, k - 1].clamp_min(1e-8)
    constant = (
        0.5 * m * math.log(math.pi)
        - math.lgamma(0.5 * m + 1.0)
        + math.log(n - 1)
        - float(_digamma(k))
    )
    angular = constant + m * float(rho.log().mean())
    if big_d > 2:
        powers = _surface_element_powers(big_d, phi)
        log_jac = float(
            (powers * phi[:, : big_d - 2].sin().clamp_min(1e-8).log()).sum(dim=1).mean()
        )
    else:
        log_jac = 0.0
    sphere = angular + log_jac
    mean_radius = float(radius.mean())
    return SphereEntropy(
        sphere=sphere,
        full=sphere + m * math.log(mean_radius),
        angular=angular,
        log_jacobian=log_jac,
        mean_radius=mean_radius,
    )


def _surface_element_powers(big_d: int, like):
    """Exponents (D-1-k) for k = 1..D-2 of the hyperspherical surface element."""
    import torch

    return torch.arange(big_d - 2, 0, -1, dtype=like.dtype, device=like.device)


def uniform_sphere_entropy(dim_ambient: int) -> float:
    r"""Log surface area of the unit sphere :math:`S^{D-1} \subset \mathbb R^D`, in nats.

    Parameters
    ----------
    dim_ambient : int >= 1
        The ambient dimension D.

    Returns
    -------
    float
        :math:`\log(2\pi^{D/2}/\Gamma(D/2))`, the differential entropy (nats) of the uniform
        distribution on the sphere; the closed form :func:`sphere_kl_entropy` is tested against.

    Notes
    -----
    Surface area of the unit sphere :math:`|S^{D-1}| = 2\pi^{D/2}/\Gamma(D/2)`.
    """
    if (
        isinstance(dim_ambient, bool)
        or not isinstance(dim_ambient, (int, np.integer))
        or dim_ambient < 1
    ):
        raise ValueError(f"dim_ambient must be an integer >= 1, got {dim_ambient!r}")
    return (
        math.log(2.0)
        + 0.5 * dim_ambient * math.log(math.pi)
        - math.lgamma(0.5 * dim_ambient)
    )


__all__ = [
    "knn_distances",
    "kl_entropy",
    "ksg_mutual_info",
    "knn_graph_entropy",
    "sphere_kl_entropy",
    "SphereEntropy",
    "hyperspherical_angles",
    "uniform_sphere_entropy",
]
