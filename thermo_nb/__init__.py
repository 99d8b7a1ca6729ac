"""thermo_nb: estimators, dynamics and runtime for the *thermo-sgd* executable book.

The public names below are loaded lazily (PEP 562), so ``import thermo_nb`` is cheap and
does not import torch until an estimator is used.  Every public name maps to the module
that defines it; ``dir(thermo_nb)`` lists them all.
"""

from __future__ import annotations

import importlib

from . import _compat

_compat.install()  # old module paths (thermo_nb.scaling, ...) resolve to their new homes

__version__ = "0.1.0"

# name -> defining module (relative to this package)
_EXPORTS: dict[str, str] = {
    # runtime, parameters and report
    "ResultCache": ".runtime",
    "progress": ".runtime",
    "resolve_device": ".runtime",
    "run_resumable": ".runtime",
    "seed_everything": ".runtime",
    "tune_cpu_allocator": ".runtime.cpu_allocator",
    "ParameterError": ".pipeline.params",
    "validate_parameters": ".pipeline.validation",
    "Scorecard": ".pipeline.report",
    "format_table": ".plotting.tables",
    "format_significant": ".plotting.tables",
    "show_source": ".plotting.source",
    "verdict_from_tolerance": ".pipeline.report",
    # k-NN entropies, mutual information, Gaussian closed forms
    "kl_entropy": ".estimators.knn",
    "knn_distances": ".neighbors.search",
    "knn_graph_entropy": ".estimators.knn",
    "ksg_mutual_info": ".estimators.knn",
    "sphere_kl_entropy": ".estimators.knn",
    "uniform_sphere_entropy": ".estimators.knn",
    "gaussian_entropy": ".estimators.gaussian",
    "gaussian_mutual_info": ".estimators.gaussian",
    # entropy production along trajectories
    "ift_average": ".estimators.entropy_production",
    "linear_sde_entropy_production_rate": ".estimators.entropy_production",
    "linear_sde_stationary_covariance": ".estimators.entropy_production",
    "medium_entropy_ito": ".estimators.entropy_production",
    "medium_entropy_kernel_ratio": ".estimators.entropy_production",
    "medium_entropy_stratonovich": ".estimators.entropy_production",
    "neep_entropy_production_rate": ".estimators.entropy_production",
    "system_entropy": ".estimators.entropy_production",
    "total_entropy_production": ".estimators.entropy_production",
    "tur_entropy_production_rate": ".estimators.entropy_production",
    # gradient-noise statistics
    "NoiseScale": ".estimators.gradient_noise",
    "gradient_snr": ".estimators.gradient_noise",
    "linear_regression_noise_scale": ".estimators.gradient_noise",
    "noise_scale_simple": ".estimators.gradient_noise",
    "noise_scale_two_batch": ".estimators.gradient_noise",
    "per_sample_gradients": ".estimators.gradient_noise",
    # dynamics: Langevin samplers, closed-form processes, Fokker-Planck, SGD
    "EnsembleTrainer": ".training.ensemble",
    "train_loop_reference": ".training.ensemble",
    "two_bead_linear_system": ".dynamics.exact",
    "FokkerPlanckSolution": ".dynamics.fokker_planck",
    "boltzmann_density_1d": ".dynamics.fokker_planck",
    "sample_grid_density": ".dynamics.fokker_planck",
    "solve_fokker_planck_1d": ".dynamics.fokker_planck",
    "euler_maruyama": ".dynamics.langevin",
    "unadjusted_langevin": ".dynamics.langevin",
    "gaussian_fit_log_density": ".dynamics.sgd_entropy",
    "record_distance_from_init": ".dynamics.sgd_entropy",
    "record_ensemble_trajectory": ".dynamics.sgd_entropy",
    "subspace_entropy_production": ".dynamics.sgd_entropy",
    "top_variance_subspace": ".dynamics.sgd_entropy",
    "commutator_norm": ".dynamics.sgd_linear",
    "discrete_lyapunov_covariance": ".dynamics.sgd_linear",
    "linear_chain_entropy_production_per_step": ".dynamics.sgd_linear",
    "linear_chain_gaussian_moments": ".dynamics.sgd_linear",
    "linear_chain_mean_squared_distance": ".dynamics.sgd_linear",
    "linear_regression_gradient_noise_covariance": ".dynamics.sgd_linear",
    "linear_regression_sgd": ".dynamics.sgd_linear",
    "linear_sde_probability_current": ".dynamics.sgd_linear",
    "sgd_quadratic_linear_process": ".dynamics.sgd_linear",
    "simulate_linear_chain": ".dynamics.sgd_linear",
    # models, data and fits
    "MLP": ".models.mlp",
    "flatten_params": ".models.flat_params",
    "unflatten_params": ".models.flat_params",
    "load_digits_tensors": ".data.images",
    "load_mnist": ".data.images",
    "GrowthFit": ".analysis.fits",
    "best_growth_law": ".analysis.fits",
    "fit_growth_law": ".analysis.fits",
    "fit_growth_laws": ".analysis.fits",
    # scaling laws, energy, batch size, FLOPs and bit flips (dimensional analysis)
    "CHINCHILLA_CONSTANTS": ".theory.scaling",
    "CHINCHILLA_TABLE3": ".theory.scaling",
    "chinchilla_loss": ".theory.scaling",
    "compute_optimal_allocation": ".theory.scaling",
    "compute_optimal_exponents": ".theory.scaling",
    "fit_chinchilla_huber": ".theory.scaling",
    "load_epoch_chinchilla_csv": ".theory.scaling",
    "synthetic_chinchilla_data": ".theory.scaling",
    "GPU_SPECS": ".theory.energy",
    "TRAINING_RUNS": ".theory.energy",
    "energy_per_flop": ".theory.energy",
    "landauer_energy_per_bit": ".theory.energy",
    "landauer_floor_energy": ".theory.energy",
    "batch_gradient_norm_sq_expected": ".analysis.batch_size",
    "batch_gradient_norms": ".analysis.batch_size",
    "fit_steps_vs_batch": ".analysis.batch_size",
    "mccandlish_steps": ".analysis.batch_size",
    "steps_to_target_vs_batch": ".analysis.batch_size",
    "count_training_flops": ".theory.flops",
    "flops_per_token_per_parameter": ".theory.flops",
    "TinyTransformerLM": ".models.transformer",
    "count_parameters": ".models.transformer",
    "bit_change_stats": ".analysis.bitflips",
    "count_changed_bits": ".analysis.bitflips",
    "float_bits": ".analysis.bitflips",
    "train_tracking_bit_changes": ".analysis.bitflips",
    "ulp": ".analysis.bitflips",
    "update_changes_weight": ".analysis.bitflips",
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
