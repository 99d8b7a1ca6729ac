r"""Statistics of the SGD noise term of Parsi's Langevin form of SGD (the *parametric
reservoir*, arXiv 2310.19802, sec. 5.1; book chapter ``book/sgd_heat_bath.ipynb``).

Convention (Parsi's Eq. 18-19).  With the full-data potential ``U_B(theta)`` (the mean
training loss) and the minibatch loss ``phi_theta(b_t)``, one SGD step with learning rate
``r`` reads

.. math::

    \frac{\theta_{t+1}-\theta_t}{\alpha} = -\mu\nabla U_B(\theta_t) + \mu\,\eta(t),
    \qquad \eta(t) = -\nabla\phi_{\theta_t}(b_t) + \nabla U_B(\theta_t),
    \qquad \mu = r/\alpha ,

so ``eta`` is the full-data gradient minus the minibatch gradient, in loss units per
parameter unit (nats per unit of ``theta`` for cross-entropy).  Arrays of noise vectors are
``(M, P)`` (replicas, parameters) at one time and ``(T, M, P)`` along time.  For
minibatches of ``B`` examples drawn i.i.d. with replacement, ``E[eta | theta] = 0`` and
``Cov(eta | theta) = Sigma(theta) / B`` with ``Sigma`` the per-example gradient covariance
over the training set; ``eta(t)`` is then a martingale difference, so
``E[eta_i(t) eta_i(t')] = 0`` for ``t != t'`` exactly.  Parsi's temperature is
``k_B T = mu <eta_i eta_i> / 2`` per step (his sec. 5.1, after Eq. 20); with the time unit
``alpha`` = one step this is ``r <eta_i^2> / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from .._validation import positive_int
from ..models import flatten_params, param_spec

# ----------------------------------------------------------------------------- helpers


def _as_tensor(a, name: str, ndim: "int | tuple | None" = None) -> torch.Tensor:
    t = a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    if not t.is_floating_point():
        t = t.to(torch.float64)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if dims is not None and t.dim() not in dims:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, dims))} dimensions, "
            f"got shape {tuple(t.shape)}"
        )
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def parameter_groups(spec, by: str = "layer") -> dict:
    """Slices of a flat parameter vector grouped by layer or by named tensor.

    Parameters
    ----------
    spec : ParamSpec, nn.Module or mapping name -> tensor
        The flat layout (:func:`thermo_nb.models.param_spec`).
    by : {"layer", "tensor"}
        ``"layer"``: weight and bias of one module together (names sharing the prefix
        before the last dot), labelled ``"layer 1"``, ``"layer 2"``, ... in order;
        ``"tensor"``: one group per named tensor, labelled by its name.

    Returns
    -------
    dict label -> list of ``slice``
        Slices into the flat vector (``sum`` of their lengths = parameters of the group).

    Notes
    -----
    Parsi's sec. 5.1.2 lets every group of parameters (a layer, or its weights and biases)
    have its own noise width, i.e. its own temperature; these are the groups.

    Examples
    --------
    >>> from thermo_nb.models import MLP
    >>> list(parameter_groups(MLP(3, 4, 2, depth=1)))
    ['layer 1', 'layer 2']
    """
    if by not in ("layer", "tensor"):
        raise ValueError(f"by must be 'layer' or 'tensor', got {by!r}")
    if not hasattr(spec, "numels"):
        spec = param_spec(spec)
    out: dict = {}
    start, prefixes = 0, []
    for name, n in zip(spec.names, spec.numels):
        if by == "tensor":
            label = name
        else:
            prefix = name.rpartition(".")[0]
            if prefix not in prefixes:
                prefixes.append(prefix)
            label = f"layer {prefixes.index(prefix) + 1}"
        out.setdefault(label, []).append(slice(start, start + n))
        start += n
    return out


# ----------------------------------------------------------------------------- gradients


def _functional_loss(model: nn.Module, loss_fn):
    base = model
    loss_fn = torch.nn.functional.cross_entropy if loss_fn is None else loss_fn

    def loss_one(params, buffers, xb, yb):
        return loss_fn(functional_call(base, (params, buffers), (xb,)), yb)

    return loss_one


def ensemble_gradients(
    model: nn.Module,
    params: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    idx: "torch.Tensor | None" = None,
    *,
    buffers: "dict | None" = None,
    loss_fn: "Callable | None" = None,
    chunk_size: int = 4096,
) -> tuple:
    r"""Gradient of every replica's loss, flattened: full-data or per-replica minibatch.

    Parameters
    ----------
    model : nn.Module
        The architecture (any instance; its own parameter values are not used).
    params : dict name -> tensor ``(M, *shape)``
        Stacked parameters of M replicas (``EnsembleTrainer.params``).
    x, y : tensors ``(N, ...)``
        Training inputs and targets.
    idx : int tensor ``(M, B)``, optional
        Minibatch indices of each replica.  ``None``: the full data set, i.e.
        :math:`\nabla U_B(\theta_m)` (Parsi's Eq. 18), evaluated in chunks of
        ``chunk_size`` examples.
    buffers : dict name -> tensor ``(M, *shape)``, optional
        Stacked buffers (none for an MLP).
    loss_fn : callable ``(outputs, targets) -> scalar``, optional
        Mean-reduced loss, default cross-entropy.
    chunk_size : int >= 1
        Examples per vectorised chunk of the full-data gradient.

    Returns
    -------
    grad : tensor ``(M, P)``
        Flattened in ``named_parameters`` order (loss units per parameter unit).
    loss : tensor ``(M,)``
        The corresponding mean loss (nats for cross-entropy).

    Notes
    -----
    ``vmap(grad_and_value(loss))`` over the replica axis with ``torch.func``; the
    full-data gradient is the example-weighted sum of chunk gradients, so it equals the
    gradient of the mean loss over all ``N`` examples.
    """
    chunk_size = positive_int(chunk_size, "chunk_size")
    buffers = {} if buffers is None else buffers
    loss_one = _functional_loss(model, loss_fn)
    if idx is not None:
        if idx.dim() != 2 or idx.shape[0] != next(iter(params.values())).shape[0]:
            raise ValueError(f"idx must be (M, B), got shape {tuple(idx.shape)}")
        f = vmap(grad_and_value(loss_one), in_dims=(0, 0, 0, 0))
        g, loss = f(params, buffers, x[idx], y[idx])
        return flatten_params(g, batch_dims=1).detach(), loss.detach()
    f = vmap(grad_and_value(loss_one), in_dims=(0, 0, None, None))
    n = x.shape[0]
    total, total_loss = None, None
    for i in range(0, n, chunk_size):
        xb, yb = x[i : i + chunk_size], y[i : i + chunk_size]
        g, loss = f(params, buffers, xb, yb)
        w = xb.shape[0] / n
        g = flatten_params(g, batch_dims=1).detach() * w
        total = g if total is None else total + g
        total_loss = loss.detach() * w if total_loss is None else total_loss + loss * w
    return total, total_loss.detach()


def sgd_noise(full_grad, minibatch_grad) -> torch.Tensor:
    r"""The SGD noise of Parsi's Eq. 19, :math:`\eta = -\nabla\phi_\theta(b) + \nabla U_B(\theta)`.

    Parameters
    ----------
    full_grad : tensor ``(..., P)``
        Full-data gradient :math:`\nabla U_B(\theta)`.
    minibatch_grad : tensor ``(..., P)``
        Minibatch gradient :math:`\nabla\phi_\theta(b)` at the same parameters.

    Returns
    -------
    tensor ``(..., P)``
        ``full_grad - minibatch_grad`` (loss units per parameter unit).

    Notes
    -----
    Parsi, arXiv 2310.19802, sec. 5.1, the definition below Eq. 18.  With it, plain SGD
    ``theta' = theta - r grad phi(b)`` is ``theta' = theta - r grad U_B + r eta`` (Eq. 19).

    Examples
    --------
    >>> sgd_noise(torch.tensor([1.0, 0.0]), torch.tensor([3.0, -1.0]))
    tensor([-2.,  1.])
    """
    g = _as_tensor(full_grad, "full_grad")
    gb = _as_tensor(minibatch_grad, "minibatch_grad")
    if g.shape != gb.shape:
        raise ValueError(
            f"full_grad and minibatch_grad must have one shape, got {tuple(g.shape)} "
            f"and {tuple(gb.shape)}"
        )
    return g - gb


# ----------------------------------------------------------------------------- variance


def noise_variance(eta, groups: "dict | None" = None):
    r"""Noise variance averaged over parameters, per replica (and per parameter group).

    Parameters
    ----------
    eta : array/tensor ``(..., P)``
        Noise vectors (e.g. ``(M, P)``: one per replica at one time).
    groups : dict label -> list of slices, optional
        From :func:`parameter_groups`; adds the average within each group.

    Returns
    -------
    tensor ``(...)``, or (tensor, dict label -> tensor ``(...)``) with ``groups``
        :math:`\frac1P\sum_i \eta_i^2`; averaged over replicas this is Parsi's
        :math:`\frac{1}{\dim\theta}\sum_i C_{ii}(t,0)` of Fig. 5.1c.

    Notes
    -----
    Parsi's noise is zero-mean given ``theta`` (see the module docstring), so the second
    moment is the variance; the ensemble average over replicas is taken by the caller.

    Examples
    --------
    >>> noise_variance(torch.tensor([[1.0, -1.0, 2.0, 0.0]]))
    tensor([1.5000], dtype=torch.float64)
    """
    e = _as_tensor(eta, "eta")
    sq = e.double() ** 2
    v = sq.mean(dim=-1)
    if groups is None:
        return v
    per = {
        k: torch.cat([sq[..., s] for s in sl], dim=-1).mean(dim=-1)
        for k, sl in groups.items()
    }
    return v, per


def implied_temperature(lr, noise_var):
    r"""Parsi's temperature per parameter, :math:`k_BT = \mu\langle\eta_i\eta_i\rangle/2`.

    Parameters
    ----------
    lr : float or array > 0
        Learning rate ``r``; with one step as the time unit, the mobility ``mu = r``.
    noise_var : float or array >= 0
        :math:`\langle\eta_i^2\rangle` (loss units per parameter unit, squared).

    Returns
    -------
    float or array
        ``lr * noise_var / 2`` in loss units (nats) per step.

    Notes
    -----
    Discretising Eq. 19 with step ``alpha``, the noise added per step has variance
    :math:`(\alpha\mu)^2\langle\eta^2\rangle`; the Einstein relation for an overdamped
    Langevin step, :math:`2\mu k_BT\alpha`, gives :math:`k_BT = r\langle\eta^2\rangle/2`,
    independent of ``alpha`` (Parsi sec. 5.1 sets ``T = 1`` and absorbs this into ``k_B``).
    For i.i.d. minibatches :math:`\langle\eta^2\rangle = \mathrm{tr}\Sigma/(BP)`, so
    :math:`k_BT \propto r/B` at fixed :math:`\Sigma` (the Langevin picture's ``lr/B``).

    Examples
    --------
    >>> implied_temperature(0.1, 2.0)
    0.1
    """
    t = np.asarray(lr, dtype=float) * np.asarray(noise_var, dtype=float) / 2.0
    return float(t) if t.ndim == 0 else t


# ----------------------------------------------------------------------------- time


def noise_time_gram(eta) -> torch.Tensor:
    r"""Per-replica Gram matrix of the noise over time, :math:`G_m[t,s]=\eta_m(t)\cdot\eta_m(s)`.

    Parameters
    ----------
    eta : array/tensor ``(T, M, P)``
        Noise vectors at ``T`` consecutive steps for ``M`` replicas.

    Returns
    -------
    tensor ``(M, T, T)`` (float64)
        Everything :func:`noise_autocorrelation` needs, for any time order.

    Notes
    -----
    Summing over the ``P`` parameters first makes the autocorrelation and its
    permutation null cost ``O(M T^2)`` instead of ``O(M T^2 P)`` per permutation.

    Examples
    --------
    >>> noise_time_gram(torch.ones(3, 2, 4)).shape
    torch.Size([2, 3, 3])
    """
    e = _as_tensor(eta, "eta", ndim=3).double()
    return torch.einsum("tmp,smp->mts", e, e)


def _rho_from_gram(gram: torch.Tensor, max_lag: int) -> tuple:
    """Lag sums over time origins, per replica: dots, and the zero-lag sums of the
    earlier and of the later member of each pair, each ``(..., L+1, M)``."""
    diag = torch.diagonal(gram, dim1=-2, dim2=-1)  # (..., M, T)
    t_len = diag.shape[-1]
    dots, early, late = [], [], []
    for tau in range(max_lag + 1):
        dots.append(torch.diagonal(gram, offset=tau, dim1=-2, dim2=-1).sum(-1))
        early.append(diag[..., : t_len - tau].sum(-1))
        late.append(diag[..., tau:].sum(-1))
    return torch.stack(dots, -2), torch.stack(early, -2), torch.stack(late, -2)


def _pooled_rho(dots, early, late):
    return dots.sum(-1) / (early.sum(-1) * late.sum(-1)).sqrt()


def noise_autocorrelation(
    eta=None,
    max_lag: int = 20,
    *,
    gram=None,
    n_permutations: int = 0,
    level: float = 0.01,
    seed: int = 0,
) -> dict:
    r"""Normalised temporal autocorrelation of the noise against lag, with a white-noise
    reference band from time permutations.

    Parameters
    ----------
    eta : array/tensor ``(T, M, P)``, optional
        Noise vectors at ``T`` consecutive steps for ``M`` independent replicas.
    max_lag : int, 1 <= max_lag < T
        Largest lag in steps.
    gram : tensor ``(M, T, T)``, optional
        :func:`noise_time_gram` of ``eta`` (instead of ``eta``).
    n_permutations : int >= 0
        Random time orders (independent per replica) that define the white-noise null.
    level : float in (0, 1)
        Two-sided level of the pointwise band.
    seed : int
        Seed of the permutations.

    Returns
    -------
    dict
        ``lags`` ``(L+1,)``; ``rho`` ``(L+1,)`` with ``rho[0] = 1``; ``se``, jackknife
        standard error over replicas; and with permutations: ``band`` ``(2, L+1)``, the
        ``level/2`` and ``1 - level/2`` quantiles of ``rho`` under random time order
        (white noise with the data's own heavy-tailed marginal), ``q`` the portmanteau
        statistic :math:`Q=\sum_{\tau=1}^{L}\rho(\tau)^2` and ``p_value`` its
        permutation p-value.

    Notes
    -----
    Parsi's Fig. 5.1d plots :math:`\frac1{\dim\theta}\sum_i C_{ii}(t, t'-t)`
    normalised by its value at zero lag.  We average over all time origins ``t`` of the
    window and normalise by the geometric mean of the zero-lag sums of the earlier and of
    the later members of the pairs, so a variance that drifts in time does not masquerade
    as correlation:

    .. math::

        \rho(\tau) = \frac{\sum_m\sum_t \eta_m(t)\cdot\eta_m(t+\tau)}
        {\big[\sum_m\sum_t |\eta_m(t)|^2\,\sum_m\sum_t |\eta_m(t+\tau)|^2\big]^{1/2}} .

    For an AR(1) sequence :math:`\eta(t+1) = a\,\eta(t) + \xi(t)` in its stationary
    state, :math:`\rho(\tau) = a^\tau`.  Minibatch noise is heavy-tailed (a rare batch
    holding a badly fitted example dominates), which makes normal-theory bands too
    narrow; randomly permuting the time order of each replica keeps the marginal and
    destroys only the temporal order, so the permutation quantiles are an exact-size
    white-noise band (for exchangeable noise).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> out = noise_autocorrelation(torch.randn(30, 20, 50, generator=g), 3)
    >>> bool(abs(out["rho"][1]) < 4 * out["se"][1])
    True
    """
    if (eta is None) == (gram is None):
        raise ValueError("give exactly one of eta and gram")
    g = noise_time_gram(eta) if gram is None else _as_tensor(gram, "gram", 3).double()
    m, t_len = g.shape[0], g.shape[1]
    max_lag = positive_int(max_lag, "max_lag")
    if max_lag >= t_len:
        raise ValueError(f"max_lag must be < T = {t_len}, got {max_lag}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    dots, early, late = _rho_from_gram(g, max_lag)
    rho = _pooled_rho(dots, early, late)
    if m > 1:
        sd, se_, sl = dots.sum(-1), early.sum(-1), late.sum(-1)
        loo = (sd[:, None] - dots) / (  # (L+1, M) leave-one-out
            (se_[:, None] - early) * (sl[:, None] - late)
        ).sqrt()
        se = ((m - 1) / m * ((loo - loo.mean(1, keepdim=True)) ** 2).sum(1)).sqrt()
    else:
        se = torch.full_like(rho, float("nan"))
    out = {
        "lags": np.arange(max_lag + 1),
        "rho": rho.cpu().numpy(),
        "se": se.cpu().numpy(),
    }
    n_perm = positive_int(n_permutations, "n_permutations", low=0)
    if n_perm:
        gen = torch.Generator().manual_seed(int(seed))
        null = []
        for start in range(0, n_perm, 64):
            k = min(64, n_perm - start)
            perm = torch.argsort(torch.rand(k, m, t_len, generator=gen), dim=-1)
            perm = perm.to(g.device)
            rows = torch.gather(
                g.expand(k, m, t_len, t_len),
                2,
                perm[..., None].expand(-1, -1, -1, t_len),
            )
            gp = torch.gather(rows, 3, perm[:, :, None, :].expand(-1, -1, t_len, -1))
            null.append(_pooled_rho(*_rho_from_gram(gp, max_lag)).cpu())
        null = torch.cat(null).numpy()  # (n_perm, L+1)
        q_null = (null[:, 1:] ** 2).sum(1)
        q = float((out["rho"][1:] ** 2).sum())
        out["band"] = np.quantile(null, [level / 2, 1 - level / 2], axis=0)
        out["q"] = q
        out["p_value"] = float((1 + (q_null >= q).sum()) / (1 + n_perm))
    return out


# ----------------------------------------------------------------------------- shape


def participation_ratio(samples, *, population: bool = False) -> float:
    r"""Participation ratio (effective rank) of a covariance, from samples.

    Parameters
    ----------
    samples : array/tensor ``(n, d)``
        Rows are draws (n >= 4); d may exceed n (the ``n x n`` Gram matrix is used).
    population : bool
        ``True``: the rows *are* the whole population (e.g. the per-example gradients of
        the full training set); the covariance is taken with ``1/n`` and no bias
        correction.  ``False``: rows are i.i.d. draws and the two traces are replaced by
        their unbiased estimates for Gaussian data.

    Returns
    -------
    float
        :math:`\mathrm{PR} = (\mathrm{tr}\,C)^2/\mathrm{tr}(C^2) \in [1, \mathrm{rank}\,C]`;
        ``d`` for an isotropic covariance, 1 for a rank-one covariance.

    Notes
    -----
    With the unbiased sample covariance ``S`` (divisor ``n - 1``), under normality
    (Srivastava 2005, eq. 2.1-2.2)

    .. math::

        \widehat{\mathrm{tr}\Sigma^2} = \frac{(n-1)^2}{(n-2)(n+1)}
        \Big[\mathrm{tr}S^2 - \frac{(\mathrm{tr}S)^2}{n-1}\Big], \qquad
        \widehat{(\mathrm{tr}\Sigma)^2} = (\mathrm{tr}S)^2
        - \frac{2\,\widehat{\mathrm{tr}\Sigma^2}}{n-1},

    both unbiased; their ratio is consistent.  ``tr S`` and ``tr S^2`` come from the
    centred Gram matrix, :math:`\mathrm{tr}S^2 = \|X_cX_c^\top\|_F^2/(n-1)^2`.

    References
    ----------
    M. S. Srivastava, "Some tests concerning the covariance matrix in high dimensional
    data", J. Japan Statist. Soc. 35, 251-272 (2005).
    P. Chaudhari and S. Soatto, "Stochastic gradient descent performs variational
    inference, converges to limit cycles for deep networks", arXiv:1710.11029 (2018):
    minibatch-noise covariance of low effective rank.

    Examples
    --------
    >>> participation_ratio(torch.eye(5) * 5 - 1, population=True)   # isotropic in 4 dims
    4.0
    """
    x = _as_tensor(samples, "samples", ndim=2).double()
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"samples needs at least 4 rows, got {n}")
    xc = x - x.mean(0)
    gram = xc @ xc.T if x.shape[1] > n else None
    if population:
        if gram is not None:
            tr, tr2 = float(gram.trace()) / n, float((gram**2).sum()) / n**2
        else:
            c = xc.T @ xc / n
            tr, tr2 = float(c.trace()), float((c**2).sum())
        return tr**2 / tr2
    if gram is not None:
        tr_s, tr_s2 = (
            float(gram.trace()) / (n - 1),
            float((gram**2).sum()) / (n - 1) ** 2,
        )
    else:
        s = xc.T @ xc / (n - 1)
        tr_s, tr_s2 = float(s.trace()), float((s**2).sum())
    tr2_hat = (n - 1) ** 2 / ((n - 2) * (n + 1)) * (tr_s2 - tr_s**2 / (n - 1))
    trsq_hat = tr_s**2 - 2 * tr2_hat / (n - 1)
    return trsq_hat / tr2_hat


def covariance_participation_ratio(cov) -> float:
    r"""Participation ratio :math:`(\mathrm{tr}C)^2/\mathrm{tr}(C^2)` of a covariance matrix.

    Parameters
    ----------
    cov : array/tensor ``(d, d)`` symmetric positive semi-definite, or ``(d,)`` eigenvalues

    Returns
    -------
    float
        :math:`(\sum\lambda)^2/\sum\lambda^2`.

    Notes
    -----
    The closed form that :func:`participation_ratio` estimates.

    Examples
    --------
    >>> covariance_participation_ratio(np.array([1.0, 1.0, 0.0]))
    2.0
    """
    c = _as_tensor(cov, "cov", ndim=(1, 2)).double()
    if c.dim() == 1:
        return float(c.sum() ** 2 / (c**2).sum())
    return float(c.trace() ** 2 / (c**2).sum())


# ----------------------------------------------------------------------------- ensemble


def ensemble_relative_spread(values) -> dict:
    r"""Mean, standard deviation and relative spread of a quantity across replicas.

    Parameters
    ----------
    values : array ``(..., M)``
        One value per replica in the last axis (e.g. accuracy at each recorded time).

    Returns
    -------
    dict of arrays ``(...)``
        ``mean``, ``std`` (``ddof=1``), ``relative`` = ``std / |mean|`` (the error of
        Parsi's single-run proxy relative to the ensemble average, Eq. 24).

    Notes
    -----
    Parsi's low-variance condition (sec. 5.1.3, Eq. 24) replaces
    :math:`\langle f(\theta)\rangle_{p_t(\theta)}` by :math:`f(\theta^*)` for one
    :math:`\theta^*\sim p_t`; the typical error of that proxy is the ensemble ``std``.

    Examples
    --------
    >>> round(float(ensemble_relative_spread(np.array([0.9, 1.0, 1.1]))["relative"]), 12)
    0.1
    """
    v = np.asarray(values, dtype=float)
    if v.shape[-1] < 2:
        raise ValueError("values needs at least 2 replicas in the last axis")
    mean, std = v.mean(-1), v.std(-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = std / np.abs(mean)
    return {"mean": mean, "std": std, "relative": rel}


def conditional_learned_information(log_probs) -> torch.Tensor:
    r"""Conditional L-info of each replica for a classifier, in nats.

    Parameters
    ----------
    log_probs : tensor ``(M, N, C)``
        Log predictive probabilities :math:`\ln p(y|x_n,\theta_m)` of ``M`` replicas on
        ``N`` inputs (log-softmax of the logits).

    Returns
    -------
    tensor ``(M, N)``
        :math:`\mathrm{KL}\big(p(\cdot|x_n,\theta_m)\,\|\,p_t(\cdot|x_n)\big)` with the
        ensemble predictive :math:`p_t(y|x) = \frac1M\sum_m p(y|x,\theta_m)`; the mean over
        inputs is the replica's conditional L-info, its mean over replicas the
        mutual information :math:`I(\hat Y;\Theta|X)`.

    Notes
    -----
    Parsi's Eq. 25, :math:`I_{X;\Theta}(\theta_t) = \int dx\,p(x|\theta_t)
    \ln\frac{p(x|\theta_t)}{p_t(x)}`, with the model's generated sample taken to be the
    predicted label given an input (a classifier generates labels), conditioned on the
    input.  Its ensemble average is :math:`I(\hat Y;\Theta\,|\,X)`, and Eq. 24 uses one
    replica's value as a proxy for it.

    Examples
    --------
    >>> lp = torch.log(torch.tensor([[[0.5, 0.5]], [[0.5, 0.5]]]))
    >>> conditional_learned_information(lp)
    tensor([[0.],
            [0.]], dtype=torch.float64)
    """
    lp = _as_tensor(log_probs, "log_probs", ndim=3).double()
    m = lp.shape[0]
    log_mean = torch.logsumexp(lp, dim=0) - math.log(m)
    return (lp.exp() * (lp - log_mean)).sum(-1).clamp_min(0.0)


def ensemble_log_probs(
    model: nn.Module,
    params: dict,
    x: torch.Tensor,
    *,
    buffers: "dict | None" = None,
    chunk_size: int = 4096,
) -> torch.Tensor:
    """Log-softmax outputs of every replica on ``x``: ``(M, N, C)``.

    Parameters
    ----------
    model : nn.Module
        The architecture (values of its own parameters unused).
    params : dict name -> tensor ``(M, *shape)``
        Stacked parameters.
    x : tensor ``(N, ...)``
    buffers : dict, optional
    chunk_size : int >= 1

    Returns
    -------
    tensor ``(M, N, C)``

    Notes
    -----
    ``vmap(functional_call)`` over replicas, chunked over examples.
    """
    buffers = {} if buffers is None else buffers
    f = vmap(
        lambda p, b, xb: functional_call(model, (p, b), (xb,)), in_dims=(0, 0, None)
    )
    with torch.no_grad():
        out = [
            torch.log_softmax(f(params, buffers, x[i : i + chunk_size]), dim=-1)
            for i in range(0, x.shape[0], positive_int(chunk_size, "chunk_size"))
        ]
    return torch.cat(out, dim=1)


def classifier_metrics(log_probs, y) -> dict:
    r"""Accuracy, loss and conditional L-info per replica, with their test-set resolution.

    Parameters
    ----------
    log_probs : tensor ``(M, N, C)``
        From :func:`ensemble_log_probs`.
    y : int tensor ``(N,)``
        Labels.

    Returns
    -------
    dict of numpy arrays ``(M,)``
        ``accuracy``, ``loss`` (nats), ``info`` (conditional L-info, nats), and
        ``accuracy_se``, ``loss_se``, ``info_se``: the standard error of each replica's
        value from the finite evaluation set (std over examples / sqrt(N)).

    Notes
    -----
    The per-example terms are :math:`1[\hat y_n = y_n]`, :math:`-\ln p(y_n|x_n,\theta)` and
    the KL of :func:`conditional_learned_information`; each quantity is their mean over
    the ``N`` examples, so its resolution is the standard error of a mean.
    """
    lp = _as_tensor(log_probs, "log_probs", ndim=3)
    y = y.to(lp.device)
    n = lp.shape[1]
    terms = {
        "accuracy": (lp.argmax(-1) == y).double(),
        "loss": -lp.gather(-1, y.expand(lp.shape[0], n).unsqueeze(-1))
        .squeeze(-1)
        .double(),
        "info": conditional_learned_information(lp),
    }
    out = {}
    for k, v in terms.items():
        out[k] = v.mean(1).cpu().numpy()
        out[k + "_se"] = (v.std(1) / math.sqrt(n)).cpu().numpy()
    return out


# ----------------------------------------------------------------------------- recorder


def record_sgd_noise(
    trainer,
    model: nn.Module,
    n_steps: int,
    record_at: Sequence[int],
    *,
    autocorr_steps: "Sequence[int] | None" = None,
    max_lag: int = 20,
    track: "Sequence[int] | None" = None,
    x_eval: "torch.Tensor | None" = None,
    y_eval: "torch.Tensor | None" = None,
    groups: "dict | None" = None,
    n_permutations: int = 1000,
    permutation_seed: int = 0,
    chunk_size: int = 4096,
    desc: "str | None" = None,
) -> dict:
    r"""Train an ensemble for ``n_steps`` SGD steps and record Parsi's noise along the way.

    Parameters
    ----------
    trainer : thermo_nb.EnsembleTrainer
        The ensemble (its own SGD steps are used unchanged; no weight decay assumed in
        the definition of the noise).
    model : nn.Module
        An instance of the trainer's architecture (for ``functional_call``).
    n_steps : int >= 1
        SGD steps to take.
    record_at : sequence of int in ``[0, n_steps)``
        Steps ``t`` (counted from the trainer's current step) at which the noise
        :math:`\eta(t)` of the minibatch :math:`b_t` that the trainer uses at that step is
        computed at :math:`\theta_t`, before the update.
    autocorr_steps : sequence of consecutive ints, optional
        Steps whose noise feeds the autocorrelation (recorded as well).
    max_lag : int >= 1
        Largest lag of the autocorrelation.
    n_permutations, permutation_seed : int
        White-noise null of :func:`noise_autocorrelation`.
    track : sequence of int, optional
        Flat parameter indices whose values are recorded (Fig. 5.1a).
    x_eval, y_eval : tensors, optional
        Evaluation set for :func:`classifier_metrics` at every record.
    groups : dict, optional
        :func:`parameter_groups` for per-group noise variances.
    chunk_size : int
        Examples per chunk of the full-data gradient.
    desc : str, optional
        Progress-bar label.

    Returns
    -------
    dict of numpy arrays (records in the first axis, replicas in the second)
        ``steps``; ``noise_var`` :math:`\frac1P\sum_i\eta_i^2`; ``group_var``
        ``(R, M, n_groups)`` and ``group_labels``; ``grad_norm2`` :math:`|\nabla U_B|^2`;
        ``grad_max`` :math:`\max_i|\partial_i U_B|`; ``train_loss`` :math:`U_B`;
        ``tracked`` ``(R, M, n_track)``; the metrics of :func:`classifier_metrics`;
        ``autocorr`` (dict of :func:`noise_autocorrelation`) and ``noise_gram``
        (:func:`noise_time_gram` of the block), if requested; ``diverged`` ``(M,)``; ``n_params``.

    Notes
    -----
    The trainer draws its minibatches from a :class:`ReplicaBatchSampler`; a mirror
    sampler started from the trainer's sampler state yields the same indices in
    lockstep, so :math:`\eta(t)` is computed with exactly the batch the update uses
    (the noise is *not* re-sampled).  With sampling with replacement,
    :math:`E[\eta(t)\cdot\eta(t')] = 0` for :math:`t\ne t'` holds by construction;
    ``sampling="shuffle"`` (epochs without replacement) correlates batches within an
    epoch, which the autocorrelation detects.
    """
    from ..runtime import progress
    from ..training.ensemble import ReplicaBatchSampler

    n_steps = positive_int(n_steps, "n_steps")
    autocorr_steps = [] if autocorr_steps is None else [int(s) for s in autocorr_steps]
    rec = sorted({int(s) for s in record_at} | set(autocorr_steps))
    if rec and (rec[0] < 0 or rec[-1] >= n_steps):
        raise ValueError(f"record steps must lie in [0, {n_steps}), got {rec[0]}..")
    ac_set = set(autocorr_steps)
    if ac_set and sorted(ac_set) != list(range(min(ac_set), max(ac_set) + 1)):
        raise ValueError("autocorr_steps must be consecutive steps")
    if ac_set and len(ac_set) <= max_lag:
        raise ValueError(f"autocorr_steps needs more than max_lag = {max_lag} steps")
    s = trainer.sampler
    mirror = ReplicaBatchSampler(
        s.n_data, s.batch_size, trainer.seeds, s.sampling, trainer.device
    )
    mirror.load_state_dict(s.state_dict())
    block: list = []
    track = [] if track is None else [int(i) for i in track]
    rec_set = set(rec)
    keys = ("noise_var", "grad_norm2", "grad_max", "train_loss", "group_var", "tracked")
    out: dict = {k: [] for k in keys}
    metrics: dict = {}
    for t in progress(range(n_steps), total=n_steps, desc=desc or "SGD noise"):
        idx = mirror.next()
        if t in rec_set:
            params = trainer.params
            g_full, u = ensemble_gradients(
                model,
                params,
                trainer.x,
                trainer.y,
                buffers=trainer.buffers,
                loss_fn=None
                if trainer.loss_fn is torch.nn.functional.cross_entropy
                else trainer.loss_fn,
                chunk_size=chunk_size,
            )
            g_b, _ = ensemble_gradients(
                model,
                params,
                trainer.x,
                trainer.y,
                idx,
                buffers=trainer.buffers,
                loss_fn=None
                if trainer.loss_fn is torch.nn.functional.cross_entropy
                else trainer.loss_fn,
            )
            eta = sgd_noise(g_full, g_b)
            if groups is None:
                v = noise_variance(eta)
                gv = v[:, None]
            else:
                v, per = noise_variance(eta, groups)
                gv = torch.stack(list(per.values()), dim=-1)
            out["noise_var"].append(v.cpu().numpy())
            out["group_var"].append(gv.cpu().numpy())
            out["grad_norm2"].append((g_full.double() ** 2).sum(-1).cpu().numpy())
            out["grad_max"].append(g_full.abs().amax(-1).double().cpu().numpy())
            out["train_loss"].append(u.double().cpu().numpy())
            flat = flatten_params(params, batch_dims=1)
            out["tracked"].append(flat[:, track].detach().double().cpu().numpy())
            if x_eval is not None:
                lp = ensemble_log_probs(
                    model,
                    params,
                    x_eval,
                    buffers=trainer.buffers,
                    chunk_size=chunk_size,
                )
                for k, val in classifier_metrics(lp, y_eval).items():
                    metrics.setdefault(k, []).append(val)
            if t in ac_set:
                block.append(eta.detach().float())
        trainer.step()
    res = {k: np.stack(v) for k, v in out.items()}
    res.update({k: np.stack(v) for k, v in metrics.items()})
    res["steps"] = np.array(rec)
    res["group_labels"] = list(groups) if groups is not None else ["all"]
    res["diverged"] = trainer.diverged.cpu().numpy()
    res["n_params"] = int(trainer.spec.n_params)
    if block:
        res["noise_gram"] = noise_time_gram(torch.stack(block)).cpu().numpy()
        res["autocorr"] = noise_autocorrelation(
            gram=res["noise_gram"],
            max_lag=max_lag,
            n_permutations=n_permutations,
            seed=permutation_seed,
        )
    return res


def probe_participation_ratio(
    model: nn.Module,
    params_one: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    coords: "Sequence[int] | None" = None,
    *,
    chunk_size: int = 2048,
) -> float:
    r"""Participation ratio of the per-example gradient covariance (the noise covariance
    up to the factor ``1/B``) of one replica, over the whole evaluation set.

    Parameters
    ----------
    model : nn.Module
        The architecture.
    params_one : dict name -> tensor
        One replica's parameters.
    x, y : tensors ``(N, ...)``
        The examples whose gradients form the population (the training set: then the
        result is exact for that data set, no sampling error).
    coords : sequence of int, optional
        Flat indices of a low-dimensional probe; ``None`` = all parameters.
    chunk_size : int
        Examples per per-sample-gradient call.

    Returns
    -------
    float
        PR of :math:`\Sigma` restricted to the probe; ``len(coords)`` if the noise were
        isotropic there, as Eq. 20 (:math:`\propto\delta_{ij}`) assumes.

    Notes
    -----
    Minibatch sampling with replacement gives :math:`\mathrm{Cov}(\eta)=\Sigma/B`, so the PR
    does not depend on ``B``.  Per-example gradients come from
    :func:`thermo_nb.per_sample_gradients`; the covariance has rank at most ``N - 1``.
    """
    from .gradient_noise import per_sample_gradients

    parts = []
    for i in range(0, x.shape[0], positive_int(chunk_size, "chunk_size")):
        g = per_sample_gradients(
            model, params_one, x[i : i + chunk_size], y[i : i + chunk_size]
        )
        parts.append(g if coords is None else g[:, list(coords)])
    return participation_ratio(torch.cat(parts), population=True)
