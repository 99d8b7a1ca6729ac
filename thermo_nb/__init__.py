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
    # temperature of a learning rate (free-energy chapter)
    "free_energy_curves": ".estimators.temperature",
    "infer_temperature": ".estimators.temperature",
    "smooth_in_log_lr": ".estimators.temperature",
    "temperature_intervals": ".estimators.temperature",
    "trajectory_temperature": ".estimators.temperature",
    "window_graph_entropies": ".estimators.temperature",
    "gaussian_entropy": ".estimators.gaussian",
    "gaussian_mutual_info": ".estimators.gaussian",
    # learning as heat dissipation: 2-D quadrature, MALA, EBMs
    "make_grid_2d": ".estimators.grid_quadrature",
    "grid_log_partition": ".estimators.grid_quadrature",
    "grid_log_density": ".estimators.grid_quadrature",
    "grid_entropy": ".estimators.grid_quadrature",
    "grid_cross_entropy": ".estimators.grid_quadrature",
    "grid_kl_divergence": ".estimators.grid_quadrature",
    "grid_expectation": ".estimators.grid_quadrature",
    "grid_mixture_log_density": ".estimators.grid_quadrature",
    "grid_conditional_l_info": ".estimators.grid_quadrature",
    "grid_sample": ".estimators.grid_quadrature",
    "mala": ".dynamics.mala",
    "mala_step": ".dynamics.mala",
    "exact_gaussian_langevin": ".dynamics.mala",
    "init_mlp_energy": ".models.ebm",
    "mlp_energy": ".models.ebm",
    "quadratic_energy": ".models.ebm",
    "exp_family_energy": ".models.ebm",
    "exp_family_statistics": ".models.ebm",
    "sample_eight_gaussians": ".data.toy2d",
    "eight_gaussians_log_density": ".data.toy2d",
    "train_mlp_ebm_ensemble": ".training.ebm",
    "probe_chain_work": ".training.ebm",
    "train_gaussian_ebm_ensemble": ".training.ebm",
    "gaussian_ebm_stationary_variance": ".training.ebm",
    "gaussian_ebm_information": ".training.ebm",
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
    # SGD noise as a heat bath (Parsi sec. 5.1)
    "conditional_learned_information": ".estimators.noise_statistics",
    "covariance_participation_ratio": ".estimators.noise_statistics",
    "ensemble_gradients": ".estimators.noise_statistics",
    "ensemble_relative_spread": ".estimators.noise_statistics",
    "implied_temperature": ".estimators.noise_statistics",
    "noise_autocorrelation": ".estimators.noise_statistics",
    "noise_time_gram": ".estimators.noise_statistics",
    "noise_variance": ".estimators.noise_statistics",
    "participation_ratio": ".estimators.noise_statistics",
    "probe_participation_ratio": ".estimators.noise_statistics",
    "record_sgd_noise": ".estimators.noise_statistics",
    "sgd_noise": ".estimators.noise_statistics",
    # dynamics: Langevin samplers, closed-form processes, Fokker-Planck, SGD
    "EnsembleTrainer": ".training.ensemble",
    "train_loop_reference": ".training.ensemble",
    "LoopEnsemble": ".training.ensemble",
    "SphereSGD": ".training.sphere",
    "sphere_sgd_reference": ".training.sphere",
    "record_sphere_run": ".training.sphere",
    "simulate_sphere_toy": ".dynamics.sphere_toy",
    "sphere_toy_points": ".dynamics.sphere_toy",
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
    "ConvNetSI": ".models.scale_invariant",
    "ScaleInvariantMLP": ".models.scale_invariant",
    "joint_norm": ".models.scale_invariant",
    "scale_invariant_parameters": ".models.scale_invariant",
    "flatten_params": ".models.flat_params",
    "unflatten_params": ".models.flat_params",
    "load_digits_tensors": ".data.images",
    "load_mnist": ".data.images",
    "load_cifar10": ".data.cifar",
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
    # scale-invariant networks as an ideal gas
    "simulate_isotropic_gas": ".dynamics.isotropic_noise",
    "stationary_sphere_entropies": ".dynamics.isotropic_noise",
    "record_si_gas": ".training.ideal_gas_recorder",
    "fit_maxwell_surface": ".analysis.maxwell",
    "zero_step_extrapolation": ".analysis.maxwell",
    "exponential_relaxation_time": ".analysis.relaxation",
    "temperature_fixed_elr": ".theory.ideal_gas",
    "temperature_fixed_lr": ".theory.ideal_gas",
    "ideal_gas_radius_sq_fixed_elr": ".theory.ideal_gas",
    "ideal_gas_radius_fixed_lr": ".theory.ideal_gas",
    "ideal_gas_pressure": ".theory.ideal_gas",
    "discrete_radius_sq_fixed_elr": ".theory.ideal_gas",
    "discrete_radius_fixed_lr": ".theory.ideal_gas",
    "discrete_pressure_fixed_sphere": ".theory.ideal_gas",
    "vmf_log_normaliser": ".theory.ideal_gas",
    "vmf_mean_resultant": ".theory.ideal_gas",
    "vmf_energy": ".theory.ideal_gas",
    "vmf_entropy": ".theory.ideal_gas",
    "vmf_kappa_from_energy": ".theory.ideal_gas",
    "gibbs_potential": ".theory.ideal_gas",
    "maxwell_slopes": ".theory.ideal_gas",
    "norm_relaxation_time": ".theory.ideal_gas",
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
