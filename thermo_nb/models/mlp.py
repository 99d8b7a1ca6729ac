"""The multi-layer perceptron every chapter trains (digits, MNIST)."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


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

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        depth: int,
        activation: str = "relu",
        bias: bool = True,
    ):
        super().__init__()
        for name, value, low in (
            ("in_dim", in_dim, 1),
            ("hidden", hidden, 1),
            ("out_dim", out_dim, 1),
            ("depth", depth, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        self.in_dim, self.hidden, self.out_dim, self.depth = (
            in_dim,
            hidden,
            out_dim,
            depth,
        )
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
