"""Moving between a module's named parameters and one flat parameter vector (the
coordinates ``w`` of the thermodynamic picture).

The flat layout is always the order of ``module.named_parameters()``, each tensor
flattened in row-major order; :class:`ParamSpec` records it so a flat vector (or a stack of
them, shape ``(..., P)``) can be turned back into named tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import nn


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
    items = (
        list(params.named_parameters())
        if isinstance(params, nn.Module)
        else list(params.items())
    )
    if not items:
        raise ValueError("params must contain at least one tensor")
    return ParamSpec(
        tuple(k for k, _ in items),
        tuple(tuple(v.shape) for _, v in items),
        tuple(int(v.numel()) for _, v in items),
    )


def n_params(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def flatten_params(
    params: "nn.Module | Mapping[str, torch.Tensor]", batch_dims: int = 0
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
    >>> from thermo_nb.models import MLP
    >>> net = MLP(3, 4, 2, depth=1)
    >>> flatten_params(net).shape
    torch.Size([26])
    """
    tensors = (
        list(params.parameters())
        if isinstance(params, nn.Module)
        else list(params.values())
    )
    if not tensors:
        raise ValueError("params must contain at least one tensor")
    lead = tuple(tensors[0].shape[:batch_dims])
    return torch.cat([t.reshape(*lead, -1) for t in tensors], dim=-1)


def unflatten_params(flat: torch.Tensor, spec: ParamSpec) -> dict:
    """Inverse of :func:`flatten_params`: ``(*batch, P)`` -> dict name -> ``(*batch, *shape)``.

    The returned tensors are views of ``flat`` (differentiable).
    """
    if flat.shape[-1] != spec.n_params:
        raise ValueError(
            f"flat has {flat.shape[-1]} entries in its last dimension, the spec "
            f"needs {spec.n_params}"
        )
    lead = tuple(flat.shape[:-1])
    out, start = {}, 0
    for name, shape, n in zip(spec.names, spec.shapes, spec.numels):
        out[name] = flat[..., start : start + n].reshape(*lead, *shape)
        start += n
    return out
