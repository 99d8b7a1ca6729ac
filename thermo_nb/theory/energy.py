"""The energy floor of training.

The Landauer limit ``k_B T ln 2`` (from :mod:`scipy.constants`), accelerator energy per
FLOP from published peak throughput and board power, and published training energies, as
the chapter ``book/dimensional_analysis.ipynb`` calls them.

Every constant carries its source in :data:`GPU_SPECS` and :data:`TRAINING_RUNS`.
"""

from __future__ import annotations

import math

from .._validation import positive_array

__all__ = [
    "GPU_SPECS",
    "TRAINING_RUNS",
    "landauer_energy_per_bit",
    "energy_per_flop",
    "landauer_floor_energy",
]


# ----------------------------------------------------------------------------- constants

GPU_SPECS: dict[str, dict] = {
    # dense (no 2:4 sparsity) peak throughput in FLOP/s and board power (TDP) in W
    "H100 SXM5": {
        "power_w": 700.0,
        "peak_flops": {
            "bf16": 989.4e12,
            "fp8": 1978.9e12,
            "tf32": 494.7e12,
            "fp32": 66.9e12,
        },
        "source": "NVIDIA H100 Tensor Core GPU datasheet (SXM5; dense = half the "
        "'with sparsity' figure)",
    },
    "A100 SXM4": {
        "power_w": 400.0,
        "peak_flops": {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
        "source": "NVIDIA A100 Tensor Core GPU datasheet (SXM4, dense)",
    },
    "V100 SXM2": {
        "power_w": 300.0,
        "peak_flops": {"fp16": 125e12, "fp32": 15.7e12},
        "source": "NVIDIA Tesla V100 datasheet (SXM2)",
    },
}
"""Published peak dense throughput (FLOP/s) and board power (W) of three accelerators."""

TRAINING_RUNS: dict[str, dict] = {
    "GPT-3": {
        "flops": 3.14e23,
        "energy_mwh": 1287.0,
        "parameters": 175e9,
        "tokens": 300e9,
        "source": "Patterson et al. 2021 (arXiv 2104.10350), Table 4",
    },
    "Chinchilla": {
        "flops": 5.76e23,
        "energy_mwh": None,
        "parameters": 70e9,
        "tokens": 1.4e12,
        "source": "Hoffmann et al. 2022: Gopher compute budget, Table 3; no "
        "energy figure published",
    },
}
"""Published compute (FLOP) and, where known, energy (MWh) of two training runs."""


# ----------------------------------------------------------------------------- energy


def landauer_energy_per_bit(temperature_k: float = 300.0) -> float:
    """Landauer's minimum heat to erase one bit, ``k_B T ln 2`` in joules.

    Parameters
    ----------
    temperature_k : float
        Temperature of the heat bath in kelvin, > 0.

    Returns
    -------
    float
        Joules per erased bit (2.8710e-21 J at 300 K).

    Notes
    -----
    Landauer (1961), "Irreversibility and heat generation in the computing process", IBM J.
    Res. Dev. 5, 183. ``k_B`` is the exact SI value (2019) from :mod:`scipy.constants`.

    Examples
    --------
    >>> f"{landauer_energy_per_bit(300.0):.4e}"
    '2.8710e-21'
    """
    from scipy.constants import Boltzmann

    if not (temperature_k > 0 and math.isfinite(temperature_k)):
        raise ValueError(
            f"temperature_k must be a finite number > 0; got {temperature_k!r}"
        )
    return Boltzmann * temperature_k * math.log(2.0)


def energy_per_flop(gpu: str, precision: str = "bf16", mfu: float = 1.0) -> float:
    """Energy per FLOP of an accelerator at board power: ``P / (mfu * peak)``, in J/FLOP.

    Parameters
    ----------
    gpu : str
        A key of :data:`GPU_SPECS` ("H100 SXM5", "A100 SXM4", "V100 SXM2").
    precision : str
        A key of that GPU's ``peak_flops`` (dense), e.g. "bf16", "fp32".
    mfu : float
        Model FLOP utilisation in (0, 1]; 1 gives the datasheet lower bound.

    Returns
    -------
    float
        Joules per FLOP.

    Examples
    --------
    >>> f"{energy_per_flop('H100 SXM5', 'bf16'):.3e}"
    '7.075e-13'
    """
    if gpu not in GPU_SPECS:
        raise ValueError(f"gpu must be one of {sorted(GPU_SPECS)}; got {gpu!r}")
    spec = GPU_SPECS[gpu]
    if precision not in spec["peak_flops"]:
        raise ValueError(
            f"precision for {gpu} must be one of {sorted(spec['peak_flops'])}; "
            f"got {precision!r}"
        )
    if not (0 < mfu <= 1):
        raise ValueError(f"mfu must be in (0, 1]; got {mfu!r}")
    return spec["power_w"] / (mfu * spec["peak_flops"][precision])


def landauer_floor_energy(
    flops, bits_per_flop: float = 1.0, temperature_k: float = 300.0
):
    """Landauer floor of a computation: ``C * b * k_B T ln 2`` joules.

    Parameters
    ----------
    flops : array_like
        Compute C in FLOP, > 0.
    bits_per_flop : float
        Bits b irreversibly erased per FLOP, >= 0 (1 is the seed's "one FLOP, one chance to
        change a bit"; 16 would be a whole bf16 word).
    temperature_k : float
        Bath temperature in kelvin.

    Returns
    -------
    ndarray or float
        Joules.

    Notes
    -----
    Landauer (1961): erasing one bit dissipates at least ``k_B T ln 2``.

    Examples
    --------
    >>> f"{landauer_floor_energy(5.76e23, 16):.3e}"
    '2.646e+04'
    """
    if bits_per_flop < 0:
        raise ValueError(f"bits_per_flop must be >= 0; got {bits_per_flop}")
    return (
        positive_array("flops", flops)
        * bits_per_flop
        * landauer_energy_per_bit(temperature_k)
    )
