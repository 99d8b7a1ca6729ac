r"""A stationary SGD regime: a small nonlinear regression network with weight decay.

The set-up follows the nonlinear-regression example of Adhikari, Kabakcioglu, Strang, Yuret
& Hinczewski, "Machine learning in and out of equilibrium", arXiv 2306.03521 (2023):
a network with 7 weights,

.. math:: f_w(x) = w_5\tanh(w_1x + w_3) + w_6\tanh(w_2x + w_4) + w_7 ,

fitted to ``N`` noisy samples of a Gaussian bump :math:`y = e^{-x^2} + 0.1\,\epsilon` on
:math:`x\in[-3, 3)`, with the loss (mean-loss scale; theirs is this times
:math:`N/\sigma^2`)

.. math:: L(w) = \frac{1}{2N}\sum_i (y_i - f_w(x_i))^2 + \frac{\lambda}{2}\|w\|^2 .

The weight decay makes the minimum isolated, so SGD started at the minimum reaches a
genuine stationary state (no flat directions, no weight-norm growth). Two minibatching
schemes (the paper's comparison):

* ``"with"`` replacement: every step draws ``B`` examples uniformly with replacement,
  independently of earlier steps; near the minimum the update noise has covariance
  :math:`Q = \eta^2\Sigma/B`, :math:`\Sigma` the population covariance of the
  per-example gradients (the paper's WR notebook draws ``B`` distinct examples,
  ``randperm(N)[1:B]``, which multiplies :math:`Q` by :math:`(N-B)/(N-1)`, 0.95 here);
* ``"without"`` replacement: each epoch reshuffles the data and visits every example once
  in ``N/B`` batches. The noise of the steps of one epoch sums to zero at fixed ``w``, so
  at the epoch level the noise is :math:`O(\eta^2)`, not :math:`O(\eta)`.

Everything is vectorised over replicas (rows of ``w``), in numpy float64.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gaussian_bump_data",
    "bump_net_predict",
    "bump_net_per_example_gradients",
    "bump_net_loss",
    "bump_net_gradient",
    "bump_net_hessian",
    "bump_net_minimum",
    "minibatch_noise_covariance",
    "simulate_bump_net_sgd",
]

N_WEIGHTS = 7


def gaussian_bump_data(seed: int, n: int = 200, noise: float = 0.1):
    """``x`` on a grid of ``n`` points in [-3, 3), ``y = exp(-x^2) + noise * N(0, 1)``."""
    x = np.linspace(-3.0, 3.0, n, endpoint=False)
    y = np.exp(-(x**2)) + noise * np.random.default_rng(seed).standard_normal(n)
    return x, y


def _split(w):
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    return w, w[:, 0:2], w[:, 2:4], w[:, 4:6], w[:, 6]


def bump_net_predict(w, x):
    """Predictions ``(M, n)`` of the replicas ``w`` (M, 7) on inputs ``x`` (n,) or (M, n)."""
    w, a, b, c, d = _split(w)
    x = np.asarray(x, dtype=np.float64)
    xx = x[None, :, None] if x.ndim == 1 else x[:, :, None]
    h = np.tanh(a[:, None, :] * xx + b[:, None, :])
    return (h * c[:, None, :]).sum(-1) + d[:, None]


def bump_net_per_example_gradients(w, x, y, weight_decay: float = 0.0):
    r"""Per-example gradients ``(M, n, 7)`` of :math:`\ell_i = (y_i - f_w(x_i))^2/2 +
    \lambda\|w\|^2/2` (so their mean over examples is :math:`\nabla L`)."""
    w, a, b, c, d = _split(w)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xx = x[None, :, None] if x.ndim == 1 else x[:, :, None]
    yy = y[None, :] if y.ndim == 1 else y
    h = np.tanh(a[:, None, :] * xx + b[:, None, :])
    r = (h * c[:, None, :]).sum(-1) + d[:, None] - yy  # residual f - y, (M, n)
    dh = (1.0 - h**2) * c[:, None, :]
    g = np.concatenate(
        [
            r[..., None] * dh * xx,
            r[..., None] * dh,
            r[..., None] * h,
            r[..., None],
        ],
        axis=-1,
    )
    return g + weight_decay * w[:, None, :]


def _batch_mean_gradient(w, xb, yb, weight_decay):
    """Mean gradient over each replica's batch, ``xb, yb`` of shape (M, B): the same
    numbers as ``bump_net_per_example_gradients(...).mean(1)`` with fewer temporaries."""
    a, b, c, d = w[:, None, 0:2], w[:, None, 2:4], w[:, None, 4:6], w[:, 6]
    h = np.tanh(a * xb[:, :, None] + b)
    r = np.einsum("mbj,mj->mb", h, w[:, 4:6]) + d[:, None] - yb
    rdh = r[:, :, None] * (1.0 - h * h) * c
    g = np.empty_like(w)
    g[:, 0:2] = np.einsum("mbj,mb->mj", rdh, xb)
    g[:, 2:4] = rdh.sum(1)
    g[:, 4:6] = np.einsum("mbj,mb->mj", h, r)
    g[:, 6] = r.sum(1)
    g /= xb.shape[1]
    return g + weight_decay * w


def bump_net_loss(w, x, y, weight_decay: float = 0.0):
    """Loss ``L(w)`` per replica, ``(M,)``."""
    w = np.atleast_2d(w)
    r = bump_net_predict(w, x) - np.asarray(y)[None, :]
    return 0.5 * (r**2).mean(1) + 0.5 * weight_decay * (w**2).sum(1)


def bump_net_gradient(w, x, y, weight_decay: float = 0.0):
    """Full-batch gradient ``(M, 7)``."""
    return bump_net_per_example_gradients(w, x, y, weight_decay).mean(1)


def bump_net_hessian(w, x, y, weight_decay: float = 0.0, h: float = 1e-6):
    """Hessian (7, 7) of ``L`` at one ``w`` by central differences of the exact gradient."""
    w = np.asarray(w, dtype=np.float64).reshape(N_WEIGHTS)
    E = np.eye(N_WEIGHTS) * h
    gp = bump_net_gradient(w + E, x, y, weight_decay)
    gm = bump_net_gradient(w - E, x, y, weight_decay)
    H = (gp - gm) / (2 * h)
    return 0.5 * (H + H.T)


def bump_net_minimum(
    w0, x, y, weight_decay: float = 0.0, n_gd: int = 4000, n_newton: int = 30
):
    """Minimum of ``L`` by plain gradient descent then Newton steps (as the paper does)."""
    w = np.asarray(w0, dtype=np.float64).reshape(1, N_WEIGHTS).copy()
    for _ in range(n_gd):
        w -= 0.5 * bump_net_gradient(w, x, y, weight_decay)
    w = w[0]
    for _ in range(n_newton):
        H = bump_net_hessian(w, x, y, weight_decay)
        w = w - np.linalg.solve(H, bump_net_gradient(w, x, y, weight_decay)[0])
    return w


def minibatch_noise_covariance(
    per_example_grads, batch_size: int, replacement: bool = True
) -> np.ndarray:
    r"""Covariance of the minibatch-gradient noise for batches of ``B`` examples.

    With replacement :math:`\mathrm{Cov}(g_B) = \Sigma/B`; for ``B`` distinct examples
    :math:`\frac{N-B}{B(N-1)}\Sigma` (finite-population correction; Adhikari et al. 2023,
    their ``diffusionmatrix``). :math:`\Sigma` is the population covariance of the ``N``
    per-example gradients (rows of ``per_example_grads``, (N, P)).
    """
    G = np.asarray(per_example_grads, dtype=np.float64)
    N = G.shape[0]
    if not 1 <= batch_size <= N:
        raise ValueError(f"batch_size must lie in [1, {N}], got {batch_size}")
    S = np.cov(G, rowvar=False, bias=True)
    if replacement:
        return S / batch_size
    return (N - batch_size) / (batch_size * (N - 1)) * S


def simulate_bump_net_sgd(
    w0,
    x,
    y,
    lr: float,
    batch_size: int,
    n_steps: int,
    rng: np.random.Generator,
    scheme: str = "with",
    weight_decay: float = 0.0,
    record_every: int = 1,
    temperature: float = 0.0,
) -> np.ndarray:
    """Minibatch SGD of the replicas ``w0`` (M, 7); returns records ``(K + 1, M, 7)``.

    ``scheme="with"``: ``B`` examples drawn with replacement, independently every step;
    ``"without"``: a fresh permutation per replica and epoch, ``N // B`` batches per epoch
    (``n_steps`` and ``record_every`` then count steps; record at epoch ends by choosing
    ``record_every`` a multiple of ``N // B``). ``temperature > 0`` adds the Langevin
    noise ``sqrt(2 lr T) N(0, I)`` of SGLD to every step (Welling & Teh 2011; with
    ``"without"`` this is the SGWORLD of Adhikari et al. 2023).
    """
    if scheme not in ("with", "without"):
        raise ValueError(f"scheme must be 'with' or 'without', got {scheme!r}")
    w = np.array(np.atleast_2d(w0), dtype=np.float64)
    M, N = w.shape[0], len(x)
    nb = N // batch_size
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = [w.copy()]
    perm = None
    for step in range(n_steps):
        if scheme == "with":
            idx = rng.integers(0, N, (M, batch_size))
        else:
            j = step % nb
            if j == 0:
                perm = np.argsort(rng.random((M, N)), axis=1)
            idx = perm[:, j * batch_size : (j + 1) * batch_size]
        w -= lr * _batch_mean_gradient(w, x[idx], y[idx], weight_decay)
        if temperature > 0:
            w += np.sqrt(2 * lr * temperature) * rng.standard_normal(w.shape)
        if (step + 1) % record_every == 0:
            out.append(w.copy())
    return np.stack(out)
