"""Small neural networks used by the chapters, and helpers that move between a module's
named parameters and one flat parameter vector (the coordinates ``w`` of the
thermodynamic picture).

The flat layout is always the order of ``module.named_parameters()``, each tensor
flattened in row-major order; :class:`ParamSpec` records it so a flat vector (or a stack of
them, shape ``(..., P)``) can be turned back into named tensors.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid,
               "softplus": nn.Softplus, "identity": nn.Identity}


class MLP(nn.Module):
    """Fully connected network ``in_dim -> hidden x depth -> out_dim``.

    Parameters
    ----------
    in_dim : int >= 1
        Number of input features.
    hidden : int >= 1
        Width of every hidden layer.
    out_dim : int >= 1
        Number of outputs (logits for classification).
    depth : int >= 0
        Number of **hidden layers**, each ``Linear -> activation``.  The network therefore
        has ``depth + 1`` linear layers; ``depth=0`` is a linear (logistic-regression) model.
    activation : {"relu", "tanh", "gelu", "sigmoid", "softplus", "identity"}
        Non-linearity after each hidden linear layer (none after the output layer).
    bias : bool
        Whether the linear layers carry biases.

    Notes
    -----
    Parameters use PyTorch's default ``nn.Linear`` initialisation (Kaiming-uniform with
    ``a = sqrt(5)``), drawn from the global torch RNG: seed it (``torch.manual_seed``) before
    construction for a reproducible initial point.  Inputs of shape ``(B, *feature_shape)``
    are flattened to ``(B, in_dim)``.

    Examples
    --------
    >>> net = MLP(64, 200, 10, depth=3)
    >>> net(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    >>> n_params(net)  # 64*200+200 + 2*(200*200+200) + 200*10+10
    95410
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, depth: int,
                 activation: str = "relu", bias: bool = True):
        super().__init__()
        for name, value, low in (("in_dim", in_dim, 1), ("hidden", hidden, 1),
                                 ("out_dim", out_dim, 1), ("depth", depth, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.in_dim, self.hidden, self.out_dim, self.depth = in_dim, hidden, out_dim, depth
        self.activation = activation
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden, bias=bias), ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, out_dim, bias=bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1) if x.dim() != 2 else x)


class ParamSpec(NamedTuple):
    """Layout of a flat parameter vector: names, shapes and sizes in order."""

    names: tuple
    shapes: tuple
    numels: tuple

    @property
    def n_params(self) -> int:
        return int(sum(self.numels))


def param_spec(params: "nn.Module | Mapping[str, torch.Tensor]") -> ParamSpec:
    """Layout (names, shapes, sizes) of a module's parameters or of a name -> tensor dict."""
    items = list(params.named_parameters()) if isinstance(params, nn.Module) else list(params.items())
    if not items:
        raise ValueError("params must contain at least one tensor")
    return ParamSpec(tuple(k for k, _ in items), tuple(tuple(v.shape) for _, v in items),
                     tuple(int(v.numel()) for _, v in items))


def n_params(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def flatten_params(params: "nn.Module | Mapping[str, torch.Tensor]", batch_dims: int = 0
                   ) -> torch.Tensor:
    """Concatenate parameters into one vector (or a stack of vectors).

    Parameters
    ----------
    params : nn.Module or mapping name -> tensor
        A module (its ``named_parameters()`` order) or a dict such as the output of
        ``torch.func.stack_module_state``.
    batch_dims : int >= 0
        Number of leading batch dimensions shared by every tensor (1 for a stacked
        ensemble of shape ``(M, *shape)``, giving an ``(M, P)`` result).

    Returns
    -------
    torch.Tensor of shape ``(*batch, P)``
        Differentiable (no detach).

    Examples
    --------
    >>> net = MLP(3, 4, 2, depth=1)
    >>> flatten_params(net).shape
    torch.Size([26])
    """
    tensors = list(params.parameters()) if isinstance(params, nn.Module) else list(params.values())
    if not tensors:
        raise ValueError("params must contain at least one tensor")
    lead = tuple(tensors[0].shape[:batch_dims])
    return torch.cat([t.reshape(*lead, -1) for t in tensors], dim=-1)


def unflatten_params(flat: torch.Tensor, spec: ParamSpec) -> dict:
    """Inverse of :func:`flatten_params`: ``(*batch, P)`` -> dict name -> ``(*batch, *shape)``.

    The returned tensors are views of ``flat`` (differentiable).
    """
    if flat.shape[-1] != spec.n_params:
        raise ValueError(f"flat has {flat.shape[-1]} entries in its last dimension, the spec "
                         f"needs {spec.n_params}")
    lead = tuple(flat.shape[:-1])
    out, start = {}, 0
    for name, shape, n in zip(spec.names, spec.shapes, spec.numels):
        out[name] = flat[..., start:start + n].reshape(*lead, *shape)
        start += n
    return out
