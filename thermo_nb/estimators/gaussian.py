"""Closed-form entropies and mutual information of Gaussian distributions, in nats.

These are the references the k-NN estimators of :mod:`thermo_nb.estimators.knn` are tested
against, and the values chapters compare measured entropies with.
"""

from __future__ import annotations

import math

import numpy as np


def _as_covariance(cov, name: str = "cov") -> np.ndarray:
    """Validate a covariance: a scalar variance or a square symmetric positive-definite matrix."""
    try:
        import torch

        if isinstance(cov, torch.Tensor):
            cov = cov.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim == 0:
        c = c.reshape(1, 1)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise ValueError(
            f"{name} must be a scalar variance or a square (d, d) matrix, got shape {c.shape}"
        )
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name} must be finite (no NaN or inf entries)")
    if not np.allclose(
        c, c.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(c).max()))
    ):
        raise ValueError(f"{name} must be symmetric")
    return c


def _logdet_positive_definite(c: np.ndarray, name: str) -> float:
    try:
        chol = np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{name} must be positive definite (Cholesky factorisation failed)"
        ) from None
    return 2.0 * float(np.log(np.diag(chol)).sum())


def gaussian_entropy(cov) -> float:
    r"""Differential entropy of a multivariate normal distribution, in nats.

    Parameters
    ----------
    cov : float or array_like of shape (d, d)
        Covariance matrix (symmetric positive definite), or a scalar variance for d = 1.
        numpy arrays and torch tensors are accepted.

    Returns
    -------
    float
        :math:`H = \tfrac12 \log\det(2\pi e\,\Sigma)` in nats.

    Notes
    -----
    .. math:: H[\mathcal N(\mu, \Sigma)] = \frac d2 \log(2\pi e) + \frac12 \log\det\Sigma .

    The mean does not enter.  Computed from a Cholesky factor, so ill-conditioned but
    positive-definite matrices are handled accurately.

    References
    ----------
    T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley (2006),
    Theorem 8.4.1.

    Examples
    --------
    >>> round(gaussian_entropy(1.0), 6)  # 0.5 * log(2 pi e)
    1.418939
    """
    c = _as_covariance(cov)
    d = c.shape[0]
    return 0.5 * d * math.log(2.0 * math.pi * math.e) + 0.5 * _logdet_positive_definite(
        c, "cov"
    )


def gaussian_mutual_info(cov, dims_x) -> float:
    r"""Mutual information between two blocks of a jointly Gaussian vector, in nats.

    Parameters
    ----------
    cov : array_like of shape (d, d)
        Joint covariance of :math:`(X, Y)`, symmetric positive definite.
    dims_x : int or sequence of int
        Which coordinates form :math:`X`.  An int ``m`` means the first ``m`` coordinates
        (``1 <= m < d``); a sequence lists the indices.  The remaining coordinates form
        :math:`Y`.

    Returns
    -------
    float
        :math:`I(X;Y)` in nats (non-negative).

    Notes
    -----
    .. math:: I(X;Y) = \tfrac12\left[\log\det\Sigma_{XX} + \log\det\Sigma_{YY}
              - \log\det\Sigma\right],

    which for two scalars with correlation :math:`\rho` is :math:`-\tfrac12\log(1-\rho^2)`.

    References
    ----------
    T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley (2006),
    Ch. 8 (Example 8.5.1 for the bivariate case).

    Examples
    --------
    >>> rho = 0.6
    >>> round(gaussian_mutual_info([[1, rho], [rho, 1]], 1), 6)  # -0.5 log(1 - rho^2)
    0.223144
    """
    c = _as_covariance(cov)
    d = c.shape[0]
    if isinstance(dims_x, (int, np.integer)) and not isinstance(dims_x, bool):
        if not 1 <= dims_x < d:
            raise ValueError(
                f"dims_x as an int must satisfy 1 <= dims_x < d = {d}, got {dims_x}"
            )
        ix = list(range(int(dims_x)))
    else:
        try:
            ix = sorted({int(i) for i in dims_x})  # type: ignore[union-attr]
        except TypeError:
            raise ValueError(
                f"dims_x must be an int or a sequence of ints, got {dims_x!r}"
            ) from None
        if (
            len(ix) != len(list(dims_x))
            or not ix
            or ix[0] < 0
            or ix[-1] >= d
            or len(ix) == d
        ):
            raise ValueError(
                f"dims_x must list distinct indices in [0, {d}) leaving at least one index for "
                f"Y, got {dims_x!r}"
            )
    iy = [i for i in range(d) if i not in set(ix)]
    logdet_joint = _logdet_positive_definite(c, "cov")
    logdet_x = _logdet_positive_definite(c[np.ix_(ix, ix)], "cov[X, X]")
    logdet_y = _logdet_positive_definite(c[np.ix_(iy, iy)], "cov[Y, Y]")
    return 0.5 * (logdet_x + logdet_y - logdet_joint)


__all__ = ["gaussian_entropy", "gaussian_mutual_info"]
