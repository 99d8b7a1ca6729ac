"""``thermo-nb run/build --dry-run``: what each chapter run would cost, without running it.

For every chapter: the parameters are validated as for a real run (exit status 2 with the
parameter named when one is wrong), then the chapter's :class:`~.planning.RunPlan` is
printed (planned sizes, estimated peak memory and run time) with what a real run would
say about it (fits in memory or not; a ``full`` run on a CPU needs ``--allow-cpu-full``).
Chapters whose specification has no ``plan`` print "no estimate". No kernel starts and
nothing is written.
"""

from __future__ import annotations

import sys

from .jobs import device_type, resolve_profile, split_overrides
from .planning import _human_bytes, available_memory_bytes


def dry_run(
    chapters: list[str],
    profile: str | None,
    overrides: dict,
    *,
    allow_cpu_full: bool = False,
    out=sys.stdout,
) -> int:
    """Print the plan of each chapter run; return 0.

    Parameters
    ----------
    chapters : list of str
        Chapter names (checked).
    profile : str or None
        ``--profile``; must agree with ``-p profile=...``.
    overrides : dict
        ``-p`` values, ``NAME`` or ``CHAPTER.NAME`` keys (as :func:`.jobs.parse_params`).
    allow_cpu_full : bool
        ``--allow-cpu-full``: only changes what the report says about a CPU ``full`` run.

    Raises
    ------
    ParameterError
        Unknown chapter, profile or parameter, or a bad value.
    """
    from .registry import get_chapter
    from .validation import check_values

    profile = resolve_profile(profile, overrides)
    per_chapter = split_overrides(overrides, chapters)
    for name in chapters:
        spec = get_chapter(name)
        params = dict(per_chapter[name], profile=profile)
        values = check_values(name, params, strict=True)
        device = device_type(values["device"])
        print(f"{name} (profile={profile}, device={device}):", file=out)
        if getattr(spec, "plan", None) is None:
            print("  no estimate (the chapter defines no plan)", file=out)
            continue
        plan = spec.plan(dict(values))
        for line in plan.describe().splitlines():
            print(f"  {line}", file=out)
        available = available_memory_bytes(device)
        if plan.peak_bytes > available:
            verdict = (
                f"would be refused: needs about {_human_bytes(plan.peak_bytes)}, "
                f"{_human_bytes(available)} of {device} memory available"
            )
        else:
            verdict = f"fits: {_human_bytes(available)} of {device} memory available"
        print(f"  memory check: {verdict}", file=out)
        if (
            profile == "full"
            and device == "cpu"
            and values.get("device") != "cpu"
            and not allow_cpu_full
        ):
            print(
                "  note: profile 'full' on a CPU: a real run needs --allow-cpu-full "
                "(or -p device=cpu)",
                file=out,
            )
    print("dry run: no kernel was started", file=out)
    return 0
