"""Chapter runs as jobs: validating a run's parameters and building its jobs, executing a
chapter with papermill (retry on kernel start-up failures, a clear report when a cell
fails or the kernel dies), running jobs side by side, and the key that says a finished
run is still up to date.

Shared by the command line (:mod:`.cli`), sweeps (:mod:`.sweep`) and dry runs
(:mod:`.dryrun`); it imports none of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .params import PROFILES, ParameterError, parse_cli_value
from .validation import check_values, writable_folder

KERNEL_START_ERRORS = (
    "Kernel didn't respond",
    "ZMQError",
    "Address already in use",
    "Kernel died before replying",
    "DeadKernelError",
)


def repo_root() -> Path:
    """The repository root: the folder holding ``_toc.yml`` (cwd or a parent of the package)."""
    for start in (Path.cwd(), Path(__file__).resolve().parent.parent):
        for p in (start, *start.parents):
            if (p / "_toc.yml").exists() and (p / "book").is_dir():
                return p
    raise SystemExit(
        "thermo-nb: cannot find the book (a folder with _toc.yml and book/); "
        "run it from the thermo-sgd repository"
    )


@dataclass
class Job:
    chapter: str
    source: Path  # notebook in book/
    output: Path  # executed notebook
    params: dict  # papermill parameters (validated)
    cwd: Path
    log: Path

    @property
    def output_dir(self) -> Path:
        """The chapter's ``output_dir``, resolved against the notebook's working folder."""
        return (self.cwd / self.params["output_dir"]).resolve()


def relative_to_folder(path: Path, start: Path) -> str:
    """``path`` relative to ``start``: the parameter papermill writes into the executed
    notebook, so the rendered book never shows the build machine's absolute paths."""
    return os.path.relpath(path.resolve(), start.resolve())


class ChapterFailed(RuntimeError):
    pass


def parse_params(pairs: list[str]) -> dict:
    """``-p NAME=VALUE`` pairs as ``{NAME: value}``; ``CHAPTER.NAME`` keys are kept whole
    (see :func:`split_overrides`)."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ParameterError(
                f"-p expects NAME=VALUE or CHAPTER.NAME=VALUE, got {pair!r}"
            )
        name, value = pair.split("=", 1)
        out[name.strip()] = parse_cli_value(value)
    return out


def split_overrides(overrides: dict, chapters: list[str]) -> dict[str, dict]:
    """Per-chapter parameters from ``-p`` pairs: ``NAME=VALUE`` goes to every chapter,
    ``CHAPTER.NAME=VALUE`` to that chapter only (it wins over a plain ``NAME``)."""
    from ..chapters import CHAPTER_MODULES

    per = {c: {} for c in chapters}
    scoped = []
    for key, value in overrides.items():
        if "." in key:
            chapter, name = key.split(".", 1)
            if chapter not in CHAPTER_MODULES:
                raise ParameterError(
                    f"-p {key}=...: unknown chapter {chapter!r}; valid chapters: "
                    f"{list(CHAPTER_MODULES)}"
                )
            if chapter not in per:
                raise ParameterError(
                    f"-p {key}=...: chapter {chapter!r} is not among those being run "
                    f"({chapters})"
                )
            scoped.append((chapter, name, value))
        else:
            for c in per:
                per[c][key] = value
    for chapter, name, value in scoped:
        per[chapter][name] = value
    return per


def resolve_profile(cli_profile: str | None, overrides: dict) -> str:
    """The run's profile from ``--profile`` and ``-p profile=...``: they must agree."""
    given = {k: v for k, v in overrides.items() if k.split(".")[-1] == "profile"}
    values = set(map(str, given.values()))
    if cli_profile is not None:
        values.add(cli_profile)
    if len(values) > 1:
        shown = [f"--profile {cli_profile}"] if cli_profile is not None else []
        shown += [f"-p {k}={v}" for k, v in given.items()]
        raise ParameterError(
            f"conflicting profiles: {', '.join(shown)}; give the profile once "
            f"(valid profiles: {list(PROFILES)})"
        )
    profile = values.pop() if values else "quick"
    if profile not in PROFILES:
        raise ParameterError(
            f"unknown profile {profile!r}; valid profiles: {list(PROFILES)}"
        )
    return profile


def device_type(device: str) -> str:
    """Where a chapter with parameter ``device`` will run (``cpu`` or ``cuda``)."""
    from ..runtime import DeviceError, resolve_device

    try:
        return resolve_device(device).type
    except DeviceError as e:
        raise ParameterError(f"parameter 'device': {e}") from None


def build_jobs(
    chapters: list[str],
    profile: str | None,
    overrides: dict,
    out_dir: Path,
    root: Path,
    *,
    allow_cpu_full: bool = False,
) -> list[Job]:
    """Validate everything first (no kernel is started if anything is wrong): chapter
    names, profile, every parameter's type and range, ``output_dir``, the planned
    memory, and a ``full`` run on a CPU."""
    from .planning import check_plan
    from .registry import get_chapter

    profile = resolve_profile(profile, overrides)
    per_chapter = split_overrides(overrides, chapters)
    jobs = []
    for name in chapters:
        spec = get_chapter(name)
        params = dict(per_chapter[name], profile=profile)
        if "output_dir" in params and isinstance(params["output_dir"], str):
            if params["output_dir"].strip():  # blank values are refused by the spec
                # relative to where the user ran the command, not to book/
                params["output_dir"] = str(
                    Path(params["output_dir"]).expanduser().resolve()
                )
        else:
            params.setdefault(
                "output_dir", relative_to_folder(out_dir / name, root / "book")
            )
        values = check_values(name, params, strict=True)  # clear ParameterError
        check_plan(
            spec,
            values,
            device_type(values["device"]),
            interactive=True,
            allow_cpu_full=allow_cpu_full,
        )
        job = Job(
            name,
            root / spec.notebook,
            out_dir / f"{name}.ipynb",
            params,
            cwd=root / "book",
            log=out_dir / f"{name}.log",
        )
        writable_folder(job.output_dir, "output_dir")
        jobs.append(job)
    return jobs


def _failing_cell_report(nb_path: Path) -> str:
    """The error of the first failing cell of an executed notebook, as text."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception as e:  # pragma: no cover - unreadable output notebook
        return f"(could not read {nb_path}: {e})"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                import re

                tb = "\n".join(out.get("traceback", []))
                tb = re.sub(r"\x1b\[[0-9;]*m", "", tb)  # strip ANSI colours
                src = (
                    cell.source
                    if len(cell.source) < 1500
                    else cell.source[:1500] + "\n..."
                )
                return (
                    f"cell {i} failed:\n{src}\n\n{out.get('ename')}: {out.get('evalue')}\n"
                    f"--- traceback ---\n{tb[-4000:]}"
                )
    return "(no error output found in the executed notebook)"


def execute_job(
    job: Job,
    kernel: str,
    timeout: int | None,
    progress_bars: bool,
    retries: int = 1,
    threads: int | None = None,
) -> float:
    """Run one chapter through papermill in a subprocess; returns seconds. Retries once on
    kernel start-up failures (port races when chapters run in parallel)."""
    job.output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(job.source),
        str(job.output),
        "-k",
        kernel,
        "--cwd",
        str(job.cwd),
        "-y",
        json.dumps(job.params),
        "--no-progress-bar",
        "--log-output",
    ]
    if timeout:
        cmd += ["--execution-timeout", str(timeout)]
    env = dict(os.environ)
    if not progress_bars:
        env["THERMO_NB_PROGRESS"] = "0"
    env.setdefault("PYTHONHASHSEED", "0")
    if (
        threads
    ):  # chapters running side by side share the cores instead of oversubscribing
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.setdefault(var, str(threads))
    t0 = time.perf_counter()
    logs = []
    for attempt in range(retries + 1):
        log_path = (
            job.log if attempt == 0 else job.log.with_suffix(f".retry{attempt}.log")
        )
        logs.append(log_path)
        with open(log_path, "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if rc == 0:
            return time.perf_counter() - t0
        text = log_path.read_text(errors="replace")
        started = _cells_executed(job.output)
        if (
            attempt < retries
            and started == 0
            and any(s in text for s in KERNEL_START_ERRORS)
            and "PapermillExecutionError" not in text
        ):
            print(
                f"[{job.chapter}] the kernel did not start ({log_path}); retrying once",
                flush=True,
            )
            continue
        break
    if "DeadKernelError" in text or "Kernel died" in text:
        what = (
            f"the kernel died after {started} executed cell(s) (killed, or out of "
            "memory: see the planned memory printed by --profile full, or reduce sizes)"
        )
    else:
        what = f"papermill exit {rc}"
    if job.output.exists():
        report = _failing_cell_report(job.output)
    else:
        report = text[-4000:]
    raise ChapterFailed(
        f"chapter {job.chapter!r} failed ({what}).\n{report}\n"
        f"Executed notebook kept at {job.output}; papermill log(s): "
        + ", ".join(map(str, logs))
    )


def _cells_executed(nb_path: Path) -> int:
    """How many code cells of an (partly) executed notebook ran."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:
        return 0
    return sum(
        1 for c in nb.cells if c.cell_type == "code" and c.get("execution_count")
    )


def run_jobs(
    jobs: list[Job],
    n_jobs: int,
    kernel: str,
    timeout: int | None,
    progress_bars: bool,
    skip=None,
) -> list[str]:
    """Execute jobs (``n_jobs`` at a time); print a line per chapter; return failures."""
    failures = []
    n_workers = max(1, min(n_jobs, len(jobs)))
    threads = max(1, (os.cpu_count() or 1) // n_workers) if n_workers > 1 else None

    def one(job: Job):
        if skip is not None and skip(job):
            print(f"[{job.chapter}] up to date: {job.output}", flush=True)
            return
        print(
            f"[{job.chapter}] running {job.source.name} (profile={job.params['profile']}) "
            f"-> {job.output}",
            flush=True,
        )
        try:
            secs = execute_job(job, kernel, timeout, progress_bars, threads=threads)
        except ChapterFailed as e:
            failures.append(job.chapter)
            print(f"[{job.chapter}] FAILED\n{e}", file=sys.stderr, flush=True)
            return
        print(f"[{job.chapter}] done in {secs:.0f} s", flush=True)

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(pool.map(one, jobs))
    return failures


def job_fingerprint(job: Job) -> str:
    from ..runtime.cache import _package_fingerprint

    h = hashlib.sha256(job.source.read_bytes())
    h.update(json.dumps(job.params, sort_keys=True).encode())
    h.update(_package_fingerprint().encode())
    return h.hexdigest()
