"""Networks the chapters train, and the flat-parameter view of a module.

``mlp`` (the digits/MNIST perceptron), ``transformer`` (the tiny language model of the
dimensional-analysis chapter), ``flat_params`` (named tensors <-> one vector ``w``).
"""

from .flat_params import (
    ParamSpec,
    flatten_params,
    n_params,
    param_spec,
    unflatten_params,
)
from .mlp import ACTIVATIONS, MLP

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ParamSpec",
    "flatten_params",
    "n_params",
    "param_spec",
    "unflatten_params",
]
