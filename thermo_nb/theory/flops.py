"""FLOP counts of a training step, measured with torch's FLOP counter.

The seed's constant ``k`` in ``C = k N D`` has units FLOP / token / parameter; the usual
value 6 is 2 (one multiply-add per weight in the forward pass) plus 4 (two matrix products of
the same size in the backward pass: the gradient with respect to the inputs and with respect
to the weights). :func:`count_training_flops` measures it instead of assuming it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["count_training_flops", "flops_per_token_per_parameter"]


def count_training_flops(
    model: nn.Module,
    inputs: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    backward: bool = True,
) -> dict:
    """FLOPs of one forward (and backward) pass, counted by ``FlopCounterMode``.

    Parameters
    ----------
    model : nn.Module
        The network; its gradients are zeroed after counting.
    inputs : tensor
        One batch of inputs (token ids for a language model).
    loss_fn : callable ``outputs -> scalar``, optional
        Loss whose gradient is taken; ``outputs.sum()`` by default (the backward FLOPs of
        the matrix products do not depend on the loss).
    backward : bool
        Count the backward pass too.

    Returns
    -------
    dict
        ``forward``, ``backward`` and ``total`` FLOPs (ints), and ``by_operator``: total
        FLOPs per aten operator (``mm``, ``addmm``, ``bmm``, ...).

    Notes
    -----
    ``torch.utils.flop_counter.FlopCounterMode`` counts matrix products (``mm``, ``addmm``,
    ``bmm``, convolutions, fused attention) as ``2 m n k`` FLOPs; element-wise operations
    (activations, softmax, LayerNorm, bias additions) are not counted, consistent with the
    ``C = 6 N D`` convention of Kaplan et al. (2020) and Hoffmann et al. (2022).

    Examples
    --------
    >>> lin = nn.Linear(7, 5, bias=False)
    >>> x = torch.randn(3, 7, requires_grad=True)
    >>> out = count_training_flops(lin, x)
    >>> out["forward"], out["backward"]
    (210, 420)
    """
    from torch.utils.flop_counter import FlopCounterMode

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a torch.Tensor; got {type(inputs).__name__}")
    loss_fn = loss_fn or (lambda out: out.float().sum())
    model.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as fwd:
        out = model(inputs)
        loss = loss_fn(out)
    result = {"forward": int(fwd.get_total_flops()), "backward": 0}
    ops = {str(k): int(v) for k, v in fwd.get_flop_counts().get("Global", {}).items()}
    if backward:
        with FlopCounterMode(display=False) as bwd:
            loss.backward()
        result["backward"] = int(bwd.get_total_flops())
        for k, v in bwd.get_flop_counts().get("Global", {}).items():
            ops[str(k)] = ops.get(str(k), 0) + int(v)
        model.zero_grad(set_to_none=True)
    result["total"] = result["forward"] + result["backward"]
    result["by_operator"] = ops
    return result


def flops_per_token_per_parameter(
    model: nn.Module,
    inputs: torch.Tensor,
    n_tokens: int,
    n_parameters: int | None = None,
    loss_fn: Callable | None = None,
) -> dict:
    """Measured ``k = C / (N D)`` of one training step, in FLOP / token / parameter.

    Parameters
    ----------
    model, inputs, loss_fn :
        As in :func:`count_training_flops`.
    n_tokens : int
        Tokens (or examples, for a non-sequence model) in ``inputs``, >= 1.
    n_parameters : int, optional
        ``N``; all trainable parameters of ``model`` by default.

    Returns
    -------
    dict
        ``k_forward``, ``k_backward``, ``k`` (= total / (n_tokens N)), ``flops`` (the dict of
        :func:`count_training_flops`), ``n_parameters`` and ``n_tokens``.

    Notes
    -----
    ``k = C_step / (N * D_step)`` with ``C_step`` the counted FLOPs of one forward+backward
    pass over ``D_step`` tokens; the seed's ``C = k N D`` (Kaplan et al. 2020, Sec. 2.1;
    Hoffmann et al. 2022, App. F) predicts ``k = 6``.
    """
    if not isinstance(n_tokens, int) or n_tokens < 1:
        raise ValueError(f"n_tokens must be an int >= 1; got {n_tokens!r}")
    if n_parameters is None:
        n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n_parameters < 1:
        raise ValueError(f"n_parameters must be >= 1; got {n_parameters}")
    fl = count_training_flops(model, inputs, loss_fn)
    denom = n_tokens * n_parameters
    return {
        "k_forward": fl["forward"] / denom,
        "k_backward": fl["backward"] / denom,
        "k": fl["total"] / denom,
        "flops": fl,
        "n_parameters": int(n_parameters),
        "n_tokens": n_tokens,
    }
