"""Runtime services with no physics in them: device choice, seeding, progress bars, the
on-disk result cache with resumable loops, and CPU allocator tuning.

This is the bottom layer of the package: every other folder may import it, it imports no
other part of ``thermo_nb``.
"""

from .cache import ResultCache, atomic_write_bytes, run_resumable
from .cpu_allocator import tune_cpu_allocator
from .device import DEVICE_CHOICES, DeviceError, resolve_device
from .progress import progress
from .seeding import seed_everything

__all__ = [
    "DEVICE_CHOICES",
    "DeviceError",
    "ResultCache",
    "atomic_write_bytes",
    "progress",
    "resolve_device",
    "run_resumable",
    "seed_everything",
    "tune_cpu_allocator",
]
