"""Scale-invariant (SI) networks: every trainable weight is followed by a normalisation
without affine parameters, and the last layer is frozen.

The loss of such a network depends only on the *direction* of the trainable weights,
``L(c w) = L(w)`` for every ``c > 0`` (van Laarhoven 2017), so the gradient is orthogonal
to ``w`` and SGD can be run on a sphere (:mod:`thermo_nb.training.sphere`).  The recipe
follows Li & Arora (arXiv:1910.07454) and the code of Sadrtdinov et al. (arXiv:2505.23489,
arXiv:2511.07308):

* linear / convolutional layers **without bias**;
* each followed by a batch normalisation **without affine parameters** that always uses
  the statistics of the current batch (train mode, as the papers use for every quantity on
  the training set; no running averages, so a model holds no state that changes in
  training and can be vectorised with ``torch.func``);
* a **frozen** last linear layer, initialised from its own seed (``head_seed=4`` as in the
  papers) and rescaled to Frobenius norm ``head_norm=10``; it is stored as *buffers*
  (``head_weight``, ``head_bias``), not parameters, so an optimiser never touches it.

Every ``nn.Parameter`` of these models is therefore scale-invariant:
:func:`scale_invariant_parameters` lists them and :func:`joint_norm` gives their joint
Euclidean norm (one number for all layers together, as the papers project jointly).

Because the normalisation divides by ``sqrt(var + eps)``, the invariance is exact for
``eps = 0`` and holds to relative order ``eps / var`` otherwise (``eps = 1e-5`` is the
PyTorch default used by the papers).  Batches need at least 2 examples (a batch of one has
zero variance).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def _batch_normalise(h: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalise every feature/channel (dim 1) over all other dims with batch statistics.

    ``(h - mean) / sqrt(var + eps)`` with the biased variance, as ``BatchNorm`` in train
    mode with ``affine=False``; written out so it vectorises under ``torch.func.vmap``.
    """
    dims = [0] + list(range(2, h.dim()))
    mean = h.mean(dim=dims, keepdim=True)
    var = (h - mean).pow(2).mean(dim=dims, keepdim=True)
    return (h - mean) / torch.sqrt(var + eps)


class BatchNormNoAffine(nn.Module):
    """Batch normalisation without affine parameters, always with batch statistics.

    Parameters
    ----------
    eps : float >= 0
        Added to the variance (PyTorch's default 1e-5; 0 makes the layer exactly
        scale-invariant).
    """

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        if not (isinstance(eps, (int, float)) and eps >= 0):
            raise ValueError(f"eps must be a float >= 0, got {eps!r}")
        self.eps = float(eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return _batch_normalise(h, self.eps)


class _FrozenHead(nn.Module):
    """Frozen linear layer stored as buffers, Frobenius norm of the weight fixed."""

    def __init__(
        self, in_dim: int, out_dim: int, norm: float, seed: int, bias: bool
    ) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # own seed, caller's RNG untouched
            torch.manual_seed(seed)
            lin = nn.Linear(in_dim, out_dim, bias=bias)
        w = lin.weight.detach().clone()
        w *= norm / w.norm()
        self.register_buffer("weight", w)
        self.register_buffer(
            "bias", lin.bias.detach().clone() if bias else torch.zeros(out_dim)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.weight.T + self.bias


def _check_positive_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


class ScaleInvariantMLP(nn.Module):
    """MLP-SI: ``depth`` blocks ``Linear(no bias) -> BatchNormNoAffine -> ReLU``, then a
    frozen linear head.

    Parameters
    ----------
    in_dim : int >= 1
        Input features (inputs ``(B, ...)`` are flattened).
    hidden : int >= 1
        Width of every hidden layer.
    n_classes : int >= 1
        Outputs (logits).
    depth : int >= 1
        Number of scale-invariant blocks.
    head_norm : float > 0
        Frobenius norm of the frozen head's weight (10 in the papers, 1.5 with MSE).
    head_seed : int >= 0
        Seed of the head's initialisation (4 in the papers), independent of the global RNG.
    head_bias : bool
        Keep the head's default-initialised bias (the papers' ConvNet does).
    eps : float >= 0
        Normalisation epsilon (see the module docstring).

    Notes
    -----
    SI parameters: ``in_dim * hidden + (depth - 1) * hidden**2``; the hidden weights use
    PyTorch's default initialisation from the global RNG.

    Examples
    --------
    >>> net = ScaleInvariantMLP(64, 16, 10, depth=2, eps=0.0)  # exactly invariant
    >>> sum(p.numel() for p in scale_invariant_parameters(net).values())
    1280
    >>> x = torch.randn(8, 64)
    >>> y0 = net(x)
    >>> _ = [p.data.mul_(3.0) for p in net.parameters()]
    >>> bool(torch.allclose(net(x), y0, atol=1e-4))
    True
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        n_classes: int,
        depth: int = 1,
        *,
        head_norm: float = 10.0,
        head_seed: int = 4,
        head_bias: bool = True,
        eps: float = 1e-5,
    ):
        super().__init__()
        _check_positive_int(in_dim, "in_dim")
        _check_positive_int(hidden, "hidden")
        _check_positive_int(n_classes, "n_classes")
        _check_positive_int(depth, "depth")
        if not (isinstance(head_norm, (int, float)) and head_norm > 0):
            raise ValueError(f"head_norm must be > 0, got {head_norm!r}")
        layers = []
        width = in_dim
        for _ in range(depth):
            layers += [
                nn.Linear(width, hidden, bias=False),
                BatchNormNoAffine(eps),
                nn.ReLU(),
            ]
            width = hidden
        self.layers = nn.Sequential(*layers)
        self.head = _FrozenHead(hidden, n_classes, head_norm, head_seed, head_bias)
        self.in_dim, self.hidden, self.n_classes, self.depth = (
            in_dim,
            hidden,
            n_classes,
            depth,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x.reshape(x.shape[0], -1)))


class ConvNetSI(nn.Module):
    """ConvNet-SI of the free-energy and ideal-gas papers (``ConvNetDepth``, depth 3).

    Four blocks ``Conv3x3(no bias) -> BatchNormNoAffine -> ReLU`` with channels
    ``3 -> c -> 2c -> 4c -> 8c`` (a 2x2 max-pool after blocks 2, 3 and 4), a 4x4 max-pool,
    and a frozen ``Linear(8c -> n_classes)`` head with Frobenius norm ``head_norm``.

    Parameters
    ----------
    width : int >= 1
        The channel width ``c`` (the papers: 8 = under-parameterised, 64 = over-).
    n_classes : int >= 1
    in_channels : int >= 1
    head_norm, head_seed, head_bias, eps
        As in :class:`ScaleInvariantMLP`.

    Notes
    -----
    SI parameters ``27 c + 378 c^2`` for RGB input: 24 408 for c = 8, 1 550 016 for
    c = 64 (the papers' counts).  Inputs ``(B, 3, 32, 32)`` (CIFAR-10).

    Examples
    --------
    >>> sum(p.numel() for p in ConvNetSI(8).parameters())
    24408
    """

    def __init__(
        self,
        width: int,
        n_classes: int = 10,
        in_channels: int = 3,
        *,
        head_norm: float = 10.0,
        head_seed: int = 4,
        head_bias: bool = True,
        eps: float = 1e-5,
    ):
        super().__init__()
        c = _check_positive_int(width, "width")
        _check_positive_int(n_classes, "n_classes")
        _check_positive_int(in_channels, "in_channels")
        chans = [in_channels, c, 2 * c, 4 * c, 8 * c]
        layers = []
        for i in range(4):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                BatchNormNoAffine(eps),
                nn.ReLU(),
            ]
            if i > 0:
                layers.append(nn.MaxPool2d(2))
        layers += [nn.MaxPool2d(4), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.head = _FrozenHead(8 * c, n_classes, head_norm, head_seed, head_bias)
        self.width, self.n_classes = c, n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))


def scale_invariant_parameters(model: nn.Module) -> dict:
    """The scale-invariant parameters of an SI model, ``{name: parameter}``.

    Parameters
    ----------
    model : nn.Module
        A :class:`ScaleInvariantMLP` or :class:`ConvNetSI` (or any model whose trainable
        parameters are all scale-invariant and whose frozen parts are buffers).

    Returns
    -------
    dict
        Every parameter with ``requires_grad``, in ``named_parameters`` order.

    Notes
    -----
    The papers' optimiser has two groups: these parameters, and the rest with learning rate
    0; here the rest are buffers, so the dict is simply the trainable parameters.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def joint_norm(
    params: "Mapping[str, torch.Tensor] | nn.Module", batch_dims: int = 0
) -> torch.Tensor:
    r"""Joint Euclidean norm :math:`\|w\| = (\sum_\ell \|W_\ell\|_F^2)^{1/2}` of a set of
    tensors (all layers together, as the papers normalise).

    Parameters
    ----------
    params : mapping name -> tensor, or nn.Module
        A module means its :func:`scale_invariant_parameters`.
    batch_dims : int >= 0
        Leading dimensions that index replicas (1 for an ensemble's stacked ``(M, ...)``
        parameters): the norm is taken over the remaining dims.

    Returns
    -------
    torch.Tensor
        Shape ``params[...].shape[:batch_dims]`` (a 0-d tensor for ``batch_dims=0``),
        accumulated in float64.
    """
    if isinstance(params, nn.Module):
        params = scale_invariant_parameters(params)
    if not params:
        raise ValueError("params is empty: no scale-invariant parameters")
    total = None
    for t in params.values():
        sq = t.detach().double().pow(2).reshape(*t.shape[:batch_dims], -1).sum(-1)
        total = sq if total is None else total + sq
    return total.sqrt()


def n_scale_invariant(model: nn.Module) -> int:
    """Number D of scale-invariant weights of ``model`` (the sphere is S^{D-1})."""
    return int(sum(p.numel() for p in scale_invariant_parameters(model).values()))
