"""thermo_nb: estimators, dynamics and runtime for the *thermo-sgd* executable book.

The public names below are loaded lazily (PEP 562), so ``import thermo_nb`` is cheap and
does not import torch until an estimator is used.  Every public name maps to the module
that defines it; ``dir(thermo_nb)`` lists them all.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> defining module (relative to this package)
_EXPORTS: dict[str, str] = {
    # runtime
    "resolve_device": ".runtime",
    "seed_everything": ".runtime",
    "progress": ".runtime",
    "ResultCache": ".runtime",
    "run_resumable": ".runtime",
    # parameters and chapters
    "validate_parameters": ".params",
    "ParameterError": ".params",
    # report
    "Scorecard": ".report",
    "verdict_from_tolerance": ".report",
    # k-NN estimators and Gaussian closed forms
    "kl_entropy": ".estimators.knn",
    "ksg_mutual_info": ".estimators.knn",
    "knn_graph_entropy": ".estimators.knn",
    "sphere_kl_entropy": ".estimators.knn",
    "knn_distances": ".estimators.knn",
    "gaussian_entropy": ".estimators.gaussian",
    "gaussian_mutual_info": ".estimators.gaussian",
    # entropy production along trajectories
    "medium_entropy_stratonovich": ".estimators.entropy_production",
    "medium_entropy_ito": ".estimators.entropy_production",
    "system_entropy": ".estimators.entropy_production",
    "total_entropy_production": ".estimators.entropy_production",
    "ift_average": ".estimators.entropy_production",
    "medium_entropy_kernel_ratio": ".estimators.entropy_production",
    "linear_sde_entropy_production_rate": ".estimators.entropy_production",
    "linear_sde_stationary_covariance": ".estimators.entropy_production",
    "tur_entropy_production_rate": ".estimators.entropy_production",
    "neep_entropy_production_rate": ".estimators.entropy_production",
    # gradient statistics
    "per_sample_gradients": ".estimators.gradient_noise",
    "noise_scale_simple": ".estimators.gradient_noise",
    "noise_scale_two_batch": ".estimators.gradient_noise",
    "gradient_snr": ".estimators.gradient_noise",
    # dynamics
    "EnsembleTrainer": ".dynamics.ensemble",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'thermo_nb' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__():
    return __all__
