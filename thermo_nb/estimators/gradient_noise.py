"""Gradient-noise statistics: per-sample gradients, the simple noise scale
B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018), its two-batch-size estimator, and the
gradient signal-to-noise ratio of Sadrtdinov et al. (2025).

Conventions.  For a loss ``L(w) = E_x[l(w, x)]`` the per-example gradients ``g_x`` have mean
``G`` and covariance ``Sigma``.  A minibatch gradient ``G_B`` (B examples drawn i.i.d.) has
``E[G_B] = G`` and ``Cov(G_B) = Sigma/B``, hence ``E|G_B|^2 = |G|^2 + tr(Sigma)/B``.
Gradients are in loss units per parameter unit (nats per unit of ``w`` for cross-entropy);
``B_simple`` is a number of examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ..models import param_spec
from ..runtime.output_pool import pooled_empty


class NoiseScale(NamedTuple):
    """Result of a noise-scale estimate (all plain floats).

    Attributes
    ----------
    B_simple : float
        Simple noise scale ``tr(Sigma)/|G|^2`` in examples (``inf`` when the |G|^2 estimate
        is <= 0, i.e. the signal is below the estimator's resolution).
    G_norm2 : float
        Unbiased estimate of ``|G|^2``, the squared norm of the true gradient.
    trace_sigma : float
        Unbiased estimate of ``tr(Sigma)``, the trace of the per-example gradient covariance.
    """

    B_simple: float
    G_norm2: float
    trace_sigma: float


def _ratio(trace_sigma: float, g_norm2: float) -> float:
    return trace_sigma / g_norm2 if g_norm2 > 0 else math.inf


def _as_float64_tensor(a, name: str, ndim: "int | None" = None) -> torch.Tensor:
    t = (
        a.detach()
        if isinstance(a, torch.Tensor)
        else torch.as_tensor(np.asarray(a, dtype=np.float64))
    )
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    t = t.to(torch.float64)
    if ndim is not None and t.dim() != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}"
        )
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


# ----------------------------------------------------------------------------- per-sample


def per_sample_gradients(
    model: "nn.Module | Callable",
    params,
    x,
    y,
    loss_fn: "Callable | None" = None,
    *,
    chunk_size: "int | None" = None,
    backend: str = "auto",
    out: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """Gradients of the loss of each example separately, flattened: shape ``(B, P)``.

    Parameters
    ----------
    model : nn.Module or callable
        * ``nn.Module``: the network; the loss of example ``i`` is
          ``loss_fn(model(x[i:i+1]), y[i:i+1])`` evaluated with ``params`` by
          ``torch.func.functional_call`` (buffers are taken from the module).
        * plain callable ``f(params_flat, x_i, y_i) -> scalar``: a per-example loss of a
          flat parameter vector; ``params`` must then be a 1-D tensor.
    params : None, mapping name -> tensor, or 1-D tensor
        Where to evaluate the gradients.  ``None`` uses the module's current parameters; a
        1-D tensor is a flat vector in ``named_parameters()`` order
        (:func:`thermo_nb.models.flatten_params`).
    x : tensor ``(B, ...)``
        Inputs (B >= 1).
    y : tensor ``(B, ...)``
        Targets.
    loss_fn : callable ``(outputs, targets) -> scalar``, optional
        Mean-reduced loss for modules; default ``torch.nn.functional.cross_entropy``.
        Ignored for a plain per-example loss.
    chunk_size : int, optional
        Examples per vectorised chunk (bounds memory; ``None`` = all at once).  ``vmap``
        backend only.
    backend : {"auto", "vmap", "fused"}
        ``"vmap"``: ``vmap(grad(loss_of_one_example))``, any model and loss.  ``"fused"``:
        for a :class:`thermo_nb.models.MLP` (relu/tanh/identity) with the default
        cross-entropy, one batched backward pass and the outer-product identity
        ``grad W_l = dz_l h_{l-1}^T`` per example, written straight into the output
        (:func:`thermo_nb.training.ensemble_fused.fused_mlp_per_sample_gradients`).
        ``"auto"`` (default): ``"fused"`` where it applies.  Both equal the loop of
        ``autograd.grad`` to float rounding.
    out : contiguous tensor ``(B, P)``, optional
        Filled in place and returned (nn.Module models).  Without it, a large result on the
        CPU comes from :func:`thermo_nb.runtime.output_pool.pooled_empty`: a buffer reused
        from an earlier call once nothing refers to that call's result any more, so a
        plain call does not page-fault a fresh ``4 B P`` bytes every time and a result
        still held is never overwritten.

    Returns
    -------
    torch.Tensor ``(B, P)``
        Row ``i`` is ``grad_w l(w, x_i, y_i)``, flattened in parameter order; detached, on
        the device of ``x``.

    Notes
    -----
    Computed as ``vmap(grad(loss_of_one_example))`` over the batch with ``torch.func``
    (PyTorch per-sample-gradient recipe), i.e. one vectorised backward pass instead of B.
    BatchNorm in train mode couples examples and is not supported per sample.
    The fused path writes each of the ``B x P`` entries once; the vmap path writes each
    layer's ``(B, *shape)`` gradient and then concatenates them.

    Examples
    --------
    >>> net = torch.nn.Linear(3, 2)
    >>> per_sample_gradients(net, None, torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])).shape
    torch.Size([5, 8])
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError("x and y must be torch tensors")
    if x.dim() < 1 or x.shape[0] < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"x and y must share a non-empty leading batch dimension, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(
            f"chunk_size must be None or a positive int, got {chunk_size!r}"
        )
    if backend not in ("auto", "vmap", "fused"):
        raise ValueError(
            f"backend must be one of ['auto', 'vmap', 'fused'], got {backend!r}"
        )

    if not isinstance(model, nn.Module):
        if not callable(model):
            raise ValueError(
                "model must be an nn.Module or a callable f(params_flat, x_i, y_i)"
            )
        if not isinstance(params, torch.Tensor) or params.dim() != 1:
            raise ValueError("with a plain loss function, params must be a 1-D tensor")
        g = vmap(grad(model), in_dims=(None, 0, 0), chunk_size=chunk_size)(
            params.detach(), x, y
        )
        return g.reshape(x.shape[0], -1).detach()

    loss_fn = torch.nn.functional.cross_entropy if loss_fn is None else loss_fn
    names = [k for k, _ in model.named_parameters()]
    if params is None:
        pdict = {k: v.detach() for k, v in model.named_parameters()}
    elif isinstance(params, torch.Tensor):
        from ..models import unflatten_params

        if params.dim() != 1:
            raise ValueError(
                f"a flat params tensor must be 1-D, got shape {tuple(params.shape)}"
            )
        pdict = unflatten_params(params.detach(), param_spec(model))
    elif isinstance(params, Mapping):
        missing = set(names) - set(params)
        if missing:
            raise ValueError(f"params lacks the module's parameters {sorted(missing)}")
        pdict = {k: params[k].detach() for k in names}
    else:
        raise ValueError(
            "params must be None, a mapping name -> tensor, or a 1-D tensor"
        )
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    n_par = param_spec(pdict).n_params
    dtype = next(iter(pdict.values())).dtype
    if out is None:
        out = pooled_empty((x.shape[0], n_par), dtype=dtype, device=x.device)
    elif (
        not isinstance(out, torch.Tensor)
        or tuple(out.shape) != (x.shape[0], n_par)
        or not out.is_contiguous()
        or out.dtype != dtype
    ):
        raise ValueError(
            f"out must be a contiguous tensor of shape {(x.shape[0], n_par)} "
            "and the parameters' dtype"
        )
    if backend != "vmap":
        from ..training.ensemble_fused import (
            FUSED_REQUIREMENTS,
            fused_mlp_layers,
            fused_mlp_per_sample_gradients,
        )

        layers = (
            None
            if chunk_size is not None
            else fused_mlp_layers(
                model,
                pdict,
                None if loss_fn is torch.nn.functional.cross_entropy else loss_fn,
                x,
                y,
                buffers,
            )
        )
        if layers is not None:
            return fused_mlp_per_sample_gradients(
                pdict, layers, model.activation, x, y, out=out
            )
        if backend == "fused":
            raise ValueError(
                f"backend='fused' needs {FUSED_REQUIREMENTS} and chunk_size=None; "
                "use backend='vmap' (or 'auto')"
            )

    def loss_of_one(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0))

    g = vmap(grad(loss_of_one), in_dims=(None, 0, 0), chunk_size=chunk_size)(
        pdict, x, y
    )
    parts = [g[k].detach().reshape(x.shape[0], -1) for k in names]
    return torch.cat(parts, dim=1, out=out)


# ----------------------------------------------------------------------------- noise scale


def noise_scale_simple(per_sample_grads, *, population: bool = False) -> NoiseScale:
    """Simple noise scale ``B_simple = tr(Sigma)/|G|^2`` from per-example gradients.

    Parameters
    ----------
    per_sample_grads : array or tensor ``(B, P)``, B >= 2, finite
        One gradient per example, all at the same parameters (e.g. from
        :func:`per_sample_gradients`).
    population : bool
        ``False`` (default): the rows are a *sample* of the data distribution and the
        unbiased formulas below apply.  ``True``: the rows are the *whole* population
        (every training example, as when the loss is the training loss), so ``G`` and
        ``Sigma`` are known exactly: ``|G|^2 = |g_bar|^2`` and
        ``tr Sigma = (1/n) sum_i |g_i - g_bar|^2``.  The unbiased formula then subtracts
        a spurious ``tr(Sigma)/n`` from ``|G|^2`` and, late in training when
        ``|G|^2 <~ tr(Sigma)/n``, returns a tiny or negative ``|G|^2`` and an infinite
        ``B_simple``.

    Returns
    -------
    NoiseScale
        ``B_simple`` (examples), ``G_norm2`` (``|G|^2``), ``trace_sigma`` (``tr Sigma``):
        unbiased sample estimates, or the exact population values with
        ``population=True``.  Computed in float64.

    Notes
    -----
    With ``g_bar = (1/B) sum_i g_i`` and the unbiased covariance trace
    ``tr(Sigma_hat) = 1/(B-1) sum_i |g_i - g_bar|^2``::

        E|g_bar|^2 = |G|^2 + tr(Sigma)/B   =>   |G|^2_hat = |g_bar|^2 - tr(Sigma_hat)/B

    and ``B_simple = tr(Sigma_hat)/|G|^2_hat`` (McCandlish et al. 2018, Eq. 2.9 for the
    definition, App. A for the unbiased |G|^2).  Each of the two estimates is unbiased;
    their ratio is only consistent (bias O(1/B)).  For a finite population of ``n``
    examples drawn i.i.d. with replacement, ``E|g_m|^2 = |G|^2 + tr(Sigma)/m`` holds
    exactly with the population values (``population=True``).

    References
    ----------
    S. McCandlish, J. Kaplan, D. Amodei and the OpenAI Dota team, "An Empirical Model of
    Large-Batch Training", arXiv:1812.06162 (2018).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> g = torch.randn(1000, 10, dtype=torch.float64) + 1.0   # G = 1, Sigma = I
    >>> round(noise_scale_simple(g).B_simple)  # true value tr(I)/|G|^2 = 10/10 = 1
    1
    """
    g = _as_float64_tensor(per_sample_grads, "per_sample_grads", ndim=2)
    n = g.shape[0]
    if n < 2:
        raise ValueError(f"per_sample_grads needs at least 2 rows (examples), got {n}")
    g_bar = g.mean(dim=0)
    if population:
        trace_sigma = float(((g - g_bar) ** 2).sum() / n)
        g_norm2 = float((g_bar**2).sum())
        return NoiseScale(_ratio(trace_sigma, g_norm2), g_norm2, trace_sigma)
    trace_sigma = float(((g - g_bar) ** 2).sum() / (n - 1))
    g_norm2 = float((g_bar**2).sum()) - trace_sigma / n
    return NoiseScale(_ratio(trace_sigma, g_norm2), g_norm2, trace_sigma)


def noise_scale_two_batch(g_small_sq, g_big_sq, b_small: int, b_big: int) -> NoiseScale:
    """``B_simple`` from squared minibatch-gradient norms at two batch sizes.

    Parameters
    ----------
    g_small_sq : float or 1-D array/tensor, finite
        ``|G_{B_small}|^2``, squared norms of minibatch gradients with ``b_small`` examples
        (several measurements are averaged).
    g_big_sq : float or 1-D array/tensor, finite
        ``|G_{B_big}|^2`` at batch size ``b_big`` (averaged likewise).
    b_small, b_big : int, 1 <= b_small < b_big
        The two batch sizes.

    Returns
    -------
    NoiseScale
        Unbiased ``G_norm2`` and ``trace_sigma``; ``B_simple`` is their ratio.

    Notes
    -----
    From ``E|G_B|^2 = |G|^2 + tr(Sigma)/B`` at the two sizes (McCandlish et al. 2018,
    App. A.1)::

        |G|^2     = (b_big |G_big|^2 - b_small |G_small|^2) / (b_big - b_small)
        tr(Sigma) = (|G_small|^2 - |G_big|^2) / (1/b_small - 1/b_big)

    The means over measurements are taken *before* the ratio (the ratio of two unbiased
    estimates is biased; averaging numerator and denominator separately keeps each
    unbiased).

    References
    ----------
    McCandlish et al., arXiv:1812.06162 (2018), Appendix A.1.

    Examples
    --------
    >>> # |G|^2 = 1, tr(Sigma) = 40: E|G_8|^2 = 6, E|G_512|^2 = 1.078125
    >>> noise_scale_two_batch(6.0, 1.078125, 8, 512).B_simple
    40.0
    """
    for name, b in (("b_small", b_small), ("b_big", b_big)):
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ValueError(f"{name} must be a positive int, got {b!r}")
    if not b_small < b_big:
        raise ValueError(f"need b_small < b_big, got b_small={b_small}, b_big={b_big}")
    s = _as_float64_tensor(g_small_sq, "g_small_sq").reshape(-1)
    b = _as_float64_tensor(g_big_sq, "g_big_sq").reshape(-1)
    if s.numel() == 0 or b.numel() == 0:
        raise ValueError("g_small_sq and g_big_sq must hold at least one value each")
    if (s < 0).any() or (b < 0).any():
        raise ValueError("squared norms g_small_sq and g_big_sq must be >= 0")
    s_mean, b_mean = float(s.mean()), float(b.mean())
    g_norm2 = (b_big * b_mean - b_small * s_mean) / (b_big - b_small)
    trace_sigma = (s_mean - b_mean) / (1.0 / b_small - 1.0 / b_big)
    return NoiseScale(_ratio(trace_sigma, g_norm2), g_norm2, trace_sigma)


def linear_regression_noise_scale(delta, noise_std: float) -> NoiseScale:
    """Closed-form ``|G|^2``, ``tr(Sigma)`` and ``B_simple`` for Gaussian linear regression.

    Model: inputs ``x ~ N(0, I_d)``, targets ``y = w*.x + eps`` with ``eps ~ N(0, s^2)``,
    per-example loss ``l(w) = (w.x - y)^2 / 2``, evaluated at ``w = w* + delta``.

    Parameters
    ----------
    delta : 1-D array or tensor (d,)
        Offset ``w - w*`` from the optimum.
    noise_std : float >= 0
        Label-noise standard deviation ``s``.

    Returns
    -------
    NoiseScale
        Exact values (floats).

    Notes
    -----
    ``g = (delta.x - eps) x``, so ``G = E[x x^T] delta = delta``.  By Isserlis' theorem
    ``E[(delta.x)^2 x x^T] = |delta|^2 I + 2 delta delta^T``, hence::

        Sigma     = (|delta|^2 + s^2) I + delta delta^T
        tr(Sigma) = d (|delta|^2 + s^2) + |delta|^2
        B_simple  = tr(Sigma) / |delta|^2

    Examples
    --------
    >>> linear_regression_noise_scale([1.0, 0.0], 1.0)
    NoiseScale(B_simple=5.0, G_norm2=1.0, trace_sigma=5.0)
    """
    delta = _as_float64_tensor(delta, "delta", ndim=1)
    if not (isinstance(noise_std, (int, float)) and noise_std >= 0):
        raise ValueError(f"noise_std must be a float >= 0, got {noise_std!r}")
    d = delta.numel()
    g_norm2 = float((delta**2).sum())
    trace_sigma = d * (g_norm2 + noise_std**2) + g_norm2
    return NoiseScale(_ratio(trace_sigma, g_norm2), g_norm2, trace_sigma)


# ----------------------------------------------------------------------------- SNR

SNR_DEFINITIONS = ("rms", "mean")


def gradient_snr(full_grad, minibatch_grads, definition: str = "rms") -> float:
    """Signal-to-noise ratio of stochastic gradients (Sadrtdinov et al. 2025).

    Parameters
    ----------
    full_grad : 1-D array/tensor (P,)
        Full-batch gradient ``g = (1/N) sum_n grad l_n`` over the training set.
    minibatch_grads : 2-D array/tensor (K, P), K >= 1
        Independent minibatch gradients ``g_i`` at the same parameters (the paper uses
        K = 1000 batches of 128 drawn with replacement).
    definition : {"rms", "mean"}
        ``"rms"`` (the paper's plotted ``snr_new``)::

            SNR = |g| / sqrt( (1/K) sum_i |g_i - g|^2 )

        ``"mean"`` (``snr_old`` in the code): ``|g| / ((1/K) sum_i |g_i - g|)``.

    Returns
    -------
    float
        Dimensionless SNR (``inf`` if every ``g_i`` equals ``g``).

    Notes
    -----
    Definition from the official code of Sadrtdinov, Klimov, Lobacheva, Vetrov, "SGD as Free
    Energy Minimization" (arXiv:2505.23489), ``utility.get_snr`` (reference note
    ``free_energy_and_ideal_gas.md`` section 2.5; the paper's equation number is not
    confirmed from its text).  For batches of size B drawn i.i.d.,
    ``E|g_i - g|^2 = tr(Sigma)/B``, so ``SNR_rms^2 -> B |G|^2 / tr(Sigma) = B / B_simple``:
    the SNR is the noise scale of McCandlish et al. seen at batch size B.

    Examples
    --------
    >>> g = torch.ones(4)
    >>> gradient_snr(g, torch.stack([g + 1, g - 1]))   # |g| = 2, rms deviation = 2
    1.0
    """
    if definition not in SNR_DEFINITIONS:
        raise ValueError(
            f"definition must be one of {list(SNR_DEFINITIONS)}, got {definition!r}"
        )
    g = _as_float64_tensor(full_grad, "full_grad", ndim=1)
    gi = _as_float64_tensor(minibatch_grads, "minibatch_grads", ndim=2)
    if gi.shape[0] < 1 or gi.shape[1] != g.shape[0]:
        raise ValueError(
            f"minibatch_grads must have shape (K >= 1, {g.shape[0]}), got "
            f"{tuple(gi.shape)}"
        )
    g = g.to(gi.device)
    dev2 = ((gi - g) ** 2).sum(dim=1)
    noise = (
        float(dev2.mean().sqrt()) if definition == "rms" else float(dev2.sqrt().mean())
    )
    signal = float(g.norm())
    return signal / noise if noise > 0 else math.inf
