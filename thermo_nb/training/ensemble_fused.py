"""Fused SGD step for an ensemble of MLPs: hand-written batched backpropagation that folds
each weight update into the matmul that computes its gradient.

:class:`thermo_nb.training.ensemble.EnsembleTrainer` computes gradients with
``vmap(grad_and_value(loss))``, which works for any architecture but materialises every
replica's gradient as a fresh tensor and then reads it again to apply the update.  For the
architecture most chapters use, :class:`thermo_nb.models.MLP` with a cross-entropy loss,
this module does the same step with batched matmuls over the replica axis and updates
``W_l`` in place with ``W_l.baddbmm_(-(eta dz_l)^T, h_{l-1})``: the gradient
``dz_l^T h_{l-1} / B`` is never stored.  Same arithmetic, same minibatches, so the replicas
follow the plain-loop trajectories to float rounding (tests/test_ensemble.py).

Backpropagation for layer l with pre-activation ``z_l = h_{l-1} W_l^T + b_l`` and
``h_l = phi(z_l)`` (mean-reduced cross-entropy over a batch of B, per replica):
``dz_L = (softmax(z_L) - onehot(y)) / B``, ``dh_{l-1} = dz_l W_l`` (taken before ``W_l`` is
updated), ``dz_{l-1} = dh_{l-1} * phi'(z_{l-1})``, ``grad W_l = dz_l^T h_{l-1}``,
``grad b_l = sum_b dz_l``.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ..models import param_spec

#: activations with a derivative written in terms of the layer output h = phi(z)
FUSED_ACTIVATIONS = ("relu", "tanh", "identity")

#: what the fused backends accept (the text of their ValueError)
FUSED_REQUIREMENTS = (
    "a thermo_nb.models.MLP with activation in "
    + str(list(FUSED_ACTIVATIONS))
    + ", the cross-entropy loss (loss_fn=None), 2-D inputs of the "
    "parameters' dtype and int64 labels"
)


def fused_mlp_layers(
    model: nn.Module,
    params: dict,
    loss_fn,
    x: torch.Tensor,
    y: torch.Tensor,
    buffers: dict,
):
    """Layer table ``[(weight_key, bias_key or None), ...]`` if the fused step applies.

    It applies to a :class:`thermo_nb.models.MLP` with a relu, tanh or identity activation,
    the default cross-entropy loss (``loss_fn is None``), 2-D inputs of the parameters'
    floating dtype, int64 class labels and no buffers; otherwise this returns ``None``.
    """
    from ..models import MLP

    if not isinstance(model, MLP) or loss_fn is not None or buffers:
        return None
    if model.activation not in FUSED_ACTIVATIONS or x.dim() != 2 or y.dim() != 1:
        return None
    if y.dtype != torch.int64 or not x.is_floating_point():
        return None
    layers = []
    for i, layer in enumerate(model.net):
        if isinstance(layer, nn.Linear):
            w, b = f"net.{i}.weight", f"net.{i}.bias"
            layers.append((w, b if b in params else None))
    if sum(1 + (b is not None) for _, b in layers) != len(params):
        return None
    if any(params[w].dtype != x.dtype for w, _ in layers):
        return None
    return layers


def _activate(z: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return z.clamp_min_(0.0)
    if activation == "tanh":
        return z.tanh_()
    return z


def _activation_backward(
    dh: torch.Tensor, h: torch.Tensor, activation: str
) -> torch.Tensor:
    """``dh * phi'(z)`` from the layer output ``h = phi(z)`` (in place on ``dh``).

    relu: ``threshold_backward`` (``dh`` where ``h > 0``, else 0) in one pass; the
    equivalent ``dh.mul_(h > 0)`` builds a bool mask and converts it, 6-8x slower on a
    ``(50, 10, 200)`` batch (~0.9 ms of a 10 ms ensemble step, measured on 2 CPU cores).
    """
    if activation == "relu":
        return torch.ops.aten.threshold_backward.grad_input(dh, h, 0.0, grad_input=dh)
    if activation == "tanh":
        return dh.mul_(1.0 - h * h)
    return dh


@torch.no_grad()
def fused_mlp_sgd_step(
    params: dict,
    layers: list,
    activation: str,
    xb: torch.Tensor,
    yb: torch.Tensor,
    lr: torch.Tensor,
    weight_decay: "torch.Tensor | None",
    diverged: torch.Tensor,
) -> torch.Tensor:
    """One SGD step for every replica of an MLP ensemble, updating ``params`` in place.

    Parameters
    ----------
    params : dict name -> tensor ``(M, *shape)``
        Stacked parameters (``torch.func.stack_module_state`` layout), updated in place.
    layers : list of ``(weight_key, bias_key or None)``
        From :func:`fused_mlp_layers`, input layer first.
    activation : {"relu", "tanh", "identity"}
    xb : tensor ``(M, B, in_dim)``
        Each replica's minibatch.
    yb : int tensor ``(M, B)``
        Class labels.
    lr : tensor ``(M,)``
        Per-replica learning rate eta_m.
    weight_decay : tensor ``(M,)`` or None
        Per-replica coupled L2 coefficient lambda_m: ``w <- (1 - eta_m lambda_m) w - eta_m
        grad`` (as ``torch.optim.SGD``); None: no decay.
    diverged : bool tensor ``(M,)``
        Replicas frozen so far; updated in place with those whose loss is now NaN/inf, and
        none of them is updated (the rule of ``EnsembleTrainer.step``).

    Returns
    -------
    torch.Tensor ``(M,)``
        Minibatch cross-entropy of every replica before the update (nats).
    """
    hs = [xb]  # inputs of each linear layer
    for j, (wk, bk) in enumerate(layers):
        w = params[wk]
        z = (
            torch.bmm(hs[-1], w.transpose(1, 2))
            if bk is None
            else torch.baddbmm(params[bk].unsqueeze(1), hs[-1], w.transpose(1, 2))
        )
        if j < len(layers) - 1:
            hs.append(_activate(z, activation))
    lse = torch.logsumexp(z, dim=2, keepdim=True)  # (M, B, 1)
    losses = (lse.squeeze(2) - z.gather(2, yb.unsqueeze(2)).squeeze(2)).mean(dim=1)
    diverged |= ~torch.isfinite(losses)
    keep = None if weight_decay is None else 1.0 - lr * weight_decay
    frozen = None
    if bool(diverged.any()):  # the one host sync; frozen replicas get exact zeros
        lr = torch.where(diverged, 0.0, lr)
        keep = None if keep is None else torch.where(diverged, 1.0, keep)
        frozen = diverged.view(-1, 1, 1)
        hs = [torch.where(frozen, 0.0, h) for h in hs]
        z = torch.where(frozen, 0.0, z)
        lse = torch.where(frozen, 0.0, lse)
    # dz_L scaled by -eta_m (backpropagation is linear in dz_L): the update of layer l is
    # then W_l += dz_l^T h_{l-1}, fused into one in-place baddbmm
    dz = z.sub_(lse).exp_()
    dz.scatter_add_(2, yb.unsqueeze(2), torch.full_like(dz[:, :, :1], -1.0))
    dz.mul_((-lr / xb.shape[1]).view(-1, 1, 1))
    for j in range(len(layers) - 1, -1, -1):
        wk, bk = layers[j]
        w = params[wk]
        if frozen is not None:  # (0 * inf would leak NaN into a frozen replica)
            dz = torch.where(frozen, 0.0, dz)
        dh = torch.bmm(dz, w) if j > 0 else None  # before W_l changes
        if keep is not None:
            w.mul_(keep.view(-1, 1, 1))
        w.baddbmm_(dz.transpose(1, 2), hs[j])
        if bk is not None:
            b = params[bk]
            if keep is not None:
                b.mul_(keep.view(-1, 1))
            b.add_(dz.sum(dim=1))
        if j > 0:
            dz = _activation_backward(dh, hs[j], activation)
    return losses


@torch.no_grad()
def fused_mlp_per_sample_gradients(
    params: dict,
    layers: list,
    activation: str,
    x: torch.Tensor,
    y: torch.Tensor,
    out: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """Per-example cross-entropy gradients of one MLP, written straight into a ``(B, P)``
    matrix.

    One batched forward and backward pass gives every example's ``dz_l`` and ``h_{l-1}``;
    example i's weight gradient is the outer product ``dz_l[i] h_{l-1}[i]^T`` (the
    per-example gradient identity of Goodfellow, arXiv:1510.01799), written by one
    broadcast multiply into its slice of the output, so each gradient entry is written
    once and never copied.

    Parameters
    ----------
    params : dict name -> tensor
        The MLP's parameters (unbatched), in flattening (``named_parameters()``) order.
    layers : list of ``(weight_key, bias_key or None)``
        From :func:`fused_mlp_layers`.
    activation : {"relu", "tanh", "identity"}
    x : tensor ``(B, in_dim)``
    y : int64 tensor ``(B,)``
    out : tensor ``(B, P)``, optional
        Written in place and returned (saves the page faults of a fresh 4 B P bytes).

    Returns
    -------
    torch.Tensor ``(B, P)``
        Row i is the gradient of ``cross_entropy(f(x_i), y_i)``, flattened in ``params`` order.
    """
    hs = [x]
    for j, (wk, bk) in enumerate(layers):
        z = torch.nn.functional.linear(
            hs[-1], params[wk], None if bk is None else params[bk]
        )
        if j < len(layers) - 1:
            hs.append(_activate(z, activation))
    dz = torch.softmax(z, dim=1)
    dz[torch.arange(x.shape[0], device=x.device), y] -= 1.0
    spec = param_spec(params)
    offsets = dict(zip(spec.names, itertools.accumulate(spec.numels, initial=0)))
    if out is None:
        out = torch.empty((x.shape[0], spec.n_params), dtype=x.dtype, device=x.device)
    for j in range(len(layers) - 1, -1, -1):
        wk, bk = layers[j]
        w = params[wk]
        n_out, n_in = w.shape
        o = offsets[wk]
        torch.mul(
            dz.unsqueeze(2),
            hs[j].unsqueeze(1),
            out=out[:, o : o + n_out * n_in].view(-1, n_out, n_in),
        )
        if bk is not None:
            out[:, offsets[bk] : offsets[bk] + n_out] = dz
        if j > 0:
            dz = _activation_backward(dz @ w, hs[j], activation)
    return out
