"""What a chapter run will cost before it starts: peak memory and CPU time estimated from
the sizes in its parameters, checked against the machine.

Each chapter may give its :class:`~thermo_nb.pipeline.params.ChapterSpec` a ``plan``
function ``values -> RunPlan`` (in ``thermo_nb/chapters/<chapter>.py``). The command line
and the notebook's validation cell call :func:`check_plan`, which

* refuses a run whose estimated peak memory exceeds the device's available memory, naming
  the parameters that drive the largest allocations and the estimate;
* refuses (command line) or warns (plain papermill, which cannot ask) when the ``full``
  profile would run on a CPU without the user saying so.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from .params import ParameterError

GIB = 2**30


@dataclass(frozen=True)
class MemoryItem:
    """One allocation of a planned run: its size and the parameters that set it."""

    what: str
    bytes: float
    params: tuple[str, ...]


@dataclass(frozen=True)
class WorkItem:
    """One stage of a planned run with its estimated CPU time (2 cores) in seconds."""

    what: str
    cpu_seconds: float
    params: tuple[str, ...]


@dataclass(frozen=True)
class RunPlan:
    """Planned sizes, peak memory and CPU time of one chapter run (estimates).

    ``memory`` lists allocations that can be alive together (the peak is their sum);
    ``work`` lists stages whose times add up.
    """

    memory: list[MemoryItem] = field(default_factory=list)
    work: list[WorkItem] = field(default_factory=list)
    sizes: Mapping[str, object] = field(default_factory=dict)

    @property
    def peak_bytes(self) -> float:
        return float(sum(m.bytes for m in self.memory))

    @property
    def cpu_seconds(self) -> float:
        return float(sum(w.cpu_seconds for w in self.work))

    def describe(self) -> str:
        """A few lines: sizes, estimated peak memory and CPU time, biggest items first."""
        lines = [
            "planned sizes: " + ", ".join(f"{k}={v}" for k, v in self.sizes.items()),
            f"estimated peak memory: {_human_bytes(self.peak_bytes)}",
        ]
        for m in sorted(self.memory, key=lambda m: -m.bytes)[:3]:
            lines.append(
                f"  {m.what}: {_human_bytes(m.bytes)} (set by {', '.join(m.params)})"
            )
        lines.append(
            f"estimated time on 2 CPU cores: {_human_seconds(self.cpu_seconds)}"
        )
        for w in sorted(self.work, key=lambda w: -w.cpu_seconds)[:3]:
            by = f" (set by {', '.join(w.params)})" if w.params else ""
            lines.append(f"  {w.what}: {_human_seconds(w.cpu_seconds)}{by}")
        return "\n".join(lines)


def _human_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", GIB), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1024:.3g} KiB"


def _human_seconds(s: float) -> str:
    if s >= 86400:
        return f"{s / 86400:.3g} days"
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    if s >= 60:
        return f"{s / 60:.3g} min"
    return f"{s:.3g} s"


def available_memory_bytes(device: str = "cpu") -> float:
    """Memory a run may use now: free GPU memory for ``cuda``, else the host's
    ``MemAvailable`` (Linux) or its free physical pages."""
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return float(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - other POSIX systems
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return float("inf")


def check_plan(
    spec,
    values: Mapping[str, object],
    device_type: str,
    *,
    interactive: bool,
    allow_cpu_full: bool = False,
) -> RunPlan | None:
    """Refuse a run that cannot fit in memory, and a ``full`` run on a CPU nobody asked for.

    Parameters
    ----------
    spec : ChapterSpec
    values : mapping
        Validated parameter values (profile defaults filled in).
    device_type : {"cpu", "cuda"}
        Where the run will execute.
    interactive : bool
        True for the command line (a CPU ``full`` run is refused unless allowed), False
        inside a notebook under plain papermill (a warning instead).
    allow_cpu_full : bool
        ``thermo-nb --allow-cpu-full``.

    Returns
    -------
    RunPlan or None
        The plan, when the chapter defines one.

    Raises
    ------
    ParameterError
        With the estimate and the parameters that drive it.
    """
    if getattr(spec, "plan", None) is None:
        return None
    plan = spec.plan(dict(values))
    explicit_cpu = values.get("device") == "cpu"
    if (
        values.get("profile") == "full"
        and device_type == "cpu"
        and not explicit_cpu
        and not allow_cpu_full
    ):
        msg = (
            f"chapter {spec.name!r}: profile 'full' is the papers' scale, meant for a GPU, "
            "and no CUDA GPU is visible, so it would run on this CPU.\n"
            + plan.describe()
        )
        if interactive:
            raise ParameterError(
                msg + "\nTo run it on the CPU anyway, pass --allow-cpu-full "
                "(or -p device=cpu); otherwise use --profile quick."
            )
        warnings.warn(msg + "\n(-p device cpu silences this warning)", stacklevel=3)
    available = available_memory_bytes(device_type)
    if plan.peak_bytes > available:
        biggest = max(plan.memory, key=lambda m: m.bytes)
        raise ParameterError(
            f"chapter {spec.name!r}: the planned run needs about "
            f"{_human_bytes(plan.peak_bytes)} of {device_type} memory but only "
            f"{_human_bytes(available)} is available; the largest part is "
            f"{biggest.what} ({_human_bytes(biggest.bytes)}), set by parameter(s) "
            f"{', '.join(repr(p) for p in biggest.params)}. Reduce them.\n"
            + plan.describe()
        )
    return plan
