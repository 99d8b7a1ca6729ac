"""The ``thermo-nb`` command line: list, run and build the book's chapters.

``thermo-nb list``                      chapters and their parameters
``thermo-nb run CHAPTER... --profile P -p NAME=VALUE``  execute chapters with papermill
``thermo-nb build --profile P``          execute every chapter, then build the HTML book
``thermo-nb strip [NOTEBOOK...]``        remove outputs before committing (book/*.ipynb)
``thermo-nb sweep CHAPTER -p NAME=V1,V2 --executor local|slurm``  a parameter grid on
submitit (see :mod:`thermo_nb.pipeline.sweep`)
``thermo-nb publish [--remote URL] [--branch gh-pages]``  push _build/html with ghp-import
``run`` and ``build`` take ``--dry-run``: the planned sizes, memory and time per chapter.

Parameters are checked against the chapter specifications (``thermo_nb/chapters``) before
any kernel starts: unknown chapters, profiles or parameter names, wrong types and values out
of range are refused with the list of valid ones.  A failing chapter makes the command exit
non-zero, prints the failing cell's error and keeps the executed notebook for inspection.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
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


# ----------------------------------------------------------------------------- list


def cmd_list(args) -> int:
    from .registry import all_chapters

    for spec in all_chapters():
        print(f"{spec.name}  ({spec.notebook})")
        print(f"  {spec.title}")
        print(f"  {spec.summary}")
        if args.brief:
            continue
        for p in spec.params:
            if p.profiles:
                default = ", ".join(f"{k}={v!r}" for k, v in p.profiles.items())
            else:
                default = repr(p.default)
            print(f"    {p.name:<18} {p.type.__name__:<6} {default:<32} {p.help}")
        print()
    return 0


# ----------------------------------------------------------------------------- run


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


def _relative_to(path: Path, start: Path) -> str:
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


def _device_type(device: str) -> str:
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
            params.setdefault("output_dir", _relative_to(out_dir / name, root / "book"))
        values = check_values(name, params, strict=True)  # clear ParameterError
        check_plan(
            spec,
            values,
            _device_type(values["device"]),
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


def cmd_run(args) -> int:
    if args.dry_run:
        from .dryrun import dry_run

        return dry_run(
            args.chapters,
            args.profile,
            parse_params(args.param),
            sys.modules[__name__],
            allow_cpu_full=args.allow_cpu_full,
        )
    root = repo_root()
    out_dir = writable_folder(Path(args.out).expanduser().resolve(), "--out")
    jobs = build_jobs(
        args.chapters,
        args.profile,
        parse_params(args.param),
        out_dir,
        root,
        allow_cpu_full=args.allow_cpu_full,
    )
    failures = run_jobs(jobs, args.jobs, args.kernel, args.timeout, progress_bars=True)
    for job in jobs:
        if job.chapter not in failures:
            sc = job.output_dir / "scorecard.json"
            print(f"[{job.chapter}] notebook: {job.output}  scorecard: {sc}")
    return 1 if failures else 0


# ----------------------------------------------------------------------------- build


def _fingerprint_job(job: Job) -> str:
    from ..runtime.cache import _package_fingerprint

    h = hashlib.sha256(job.source.read_bytes())
    h.update(json.dumps(job.params, sort_keys=True).encode())
    h.update(_package_fingerprint().encode())
    return h.hexdigest()


def _mathjax_dir() -> Path | None:
    """MathJax 3 (es5 bundle) shipped by the ``django-static-mathjax`` wheel, if installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("mathjax")
        if spec is None or not spec.submodule_search_locations:
            return None
        d = (
            Path(list(spec.submodule_search_locations)[0])
            / "static"
            / "mathjax"
            / "es5"
        )
        return d if (d / "tex-mml-chtml.js").exists() else None
    except Exception:  # pragma: no cover
        return None


def stage_book(root: Path, stage: Path) -> None:
    """Copy the book sources (config, toc, markdown, static files) into the stage folder."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, stage / name)
    shutil.copytree(
        root / "book",
        stage / "book",
        ignore=shutil.ignore_patterns(
            "*.ipynb", ".ipynb_checkpoints", "_output", "_static"
        ),
    )
    static = stage / "_static"
    shutil.copytree(root / "book" / "_static", static)  # the book's CSS
    mj = _mathjax_dir()
    if mj is None:
        raise SystemExit(
            "thermo-nb build: the local MathJax copy is missing; install the "
            "book extra: pip install -e '.[book]' (package django-static-mathjax)"
        )
    shutil.copytree(mj, static / "mathjax")


def cmd_build(args) -> int:
    from ..chapters import CHAPTER_MODULES
    from .registry import get_chapter
    from .report import scorecard_page

    root = repo_root()
    build = root / "_build"
    stage = build / "stage"
    executed = build / "executed"
    outputs = build / "outputs"
    chapters = list(CHAPTER_MODULES)
    overrides = parse_params(args.param)
    if args.dry_run:
        from .dryrun import dry_run

        return dry_run(
            chapters,
            args.profile,
            overrides,
            sys.modules[__name__],
            allow_cpu_full=args.allow_cpu_full,
        )
    jobs = build_jobs(
        chapters,
        args.profile,
        overrides,
        executed,
        root,
        allow_cpu_full=args.allow_cpu_full,
    )
    for job in jobs:
        job.params["output_dir"] = _relative_to(outputs / job.chapter, job.cwd)

    def up_to_date(job: Job) -> bool:
        key = job.output.with_suffix(".key")
        sc = job.output_dir / "scorecard.json"
        return (
            not args.force
            and key.exists()
            and job.output.exists()
            and sc.exists()
            and key.read_text() == _fingerprint_job(job)
        )

    t0 = time.perf_counter()
    failures = run_jobs(
        jobs, args.jobs, args.kernel, args.timeout, progress_bars=False, skip=up_to_date
    )
    if failures:
        print(
            f"thermo-nb build: {len(failures)} chapter(s) failed: {failures}; "
            "the HTML book was not built",
            file=sys.stderr,
        )
        return 1
    for job in jobs:
        job.output.with_suffix(".key").write_text(_fingerprint_job(job))

    stage_book(root, stage)
    for job in jobs:
        shutil.copy2(job.output, stage / "book" / job.output.name)
    page = scorecard_page(
        (get_chapter(c).name, get_chapter(c).title, outputs / c / "scorecard.json")
        for c in CHAPTER_MODULES
    )
    (stage / "book" / "scorecard.md").write_text(page)

    cmd = [
        "jupyter-book",
        "build",
        str(stage),
        "--path-output",
        str(root),
        "-W",
        "-n",
        "--keep-going",
    ]
    jb = shutil.which(
        "jupyter-book", path=str(Path(sys.executable).parent)
    ) or shutil.which("jupyter-book")
    if jb is None:
        raise SystemExit(
            "thermo-nb build: jupyter-book is not installed; pip install -e '.[book]'"
        )
    cmd[0] = jb
    print("building HTML:", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=root)
    if rc != 0:
        print(
            "thermo-nb build: jupyter-book build failed (warnings are errors)",
            file=sys.stderr,
        )
        return rc
    print(
        f"book built in {time.perf_counter() - t0:.0f} s: {root / '_build/html/index.html'}"
    )
    return 0


# ----------------------------------------------------------------------------- sweep


def cmd_sweep(args) -> int:
    """``thermo-nb sweep``: see :mod:`thermo_nb.pipeline.sweep`."""
    from .sweep import Engine
    from .sweep import cmd_sweep as run

    return run(args, Engine.of(sys.modules[__name__]))


def cmd_publish(args) -> int:
    """``thermo-nb publish``: see :mod:`thermo_nb.pipeline.publish`."""
    from .publish import publish

    return publish(
        args.html or repo_root() / "_build" / "html", args.remote, args.branch
    )


# ----------------------------------------------------------------------------- strip


def strip_outputs(path: Path) -> bool:
    """Remove outputs, execution counts and papermill metadata from a notebook in place.
    Returns True when the file changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    after = nbformat.writes(nb)
    if after != before:
        path.write_text(after)
    return after != before


def cmd_strip(args) -> int:
    root = repo_root()
    paths = [Path(p) for p in args.notebooks] or sorted((root / "book").glob("*.ipynb"))
    for p in paths:
        print(f"{'stripped' if strip_outputs(p) else 'clean   '} {p}")
    return 0


# ----------------------------------------------------------------------------- main


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="thermo-nb",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list chapters and their parameters")
    p.add_argument("--brief", action="store_true", help="chapters only, no parameters")
    p.set_defaults(func=cmd_list)

    def common(p):
        p.add_argument(
            "--profile",
            default=None,
            help=f"one of {list(PROFILES)} (default: quick; -p profile=... is the same "
            "and must agree)",
        )
        p.add_argument(
            "--allow-cpu-full",
            action="store_true",
            help="run the full profile even when no CUDA GPU is visible",
        )
        p.add_argument(
            "-p",
            "--param",
            action="append",
            metavar="NAME=VALUE",
            default=[],
            help="override a parameter (YAML value) of every chapter that has it, or "
            "of one chapter with CHAPTER.NAME=VALUE; repeatable",
        )
        p.add_argument(
            "--jobs", type=int, default=1, help="chapters executed in parallel"
        )
        p.add_argument(
            "--kernel", default="python3", help="Jupyter kernel (default python3)"
        )
        p.add_argument(
            "--timeout",
            type=int,
            default=None,
            help="per-cell timeout in seconds (default: none)",
        )
        p.add_argument(
            "--dry-run",
            action="store_true",
            help="print the planned sizes, memory and run time per chapter; run nothing",
        )

    p = sub.add_parser("run", help="execute chapters with papermill")
    p.add_argument("chapters", nargs="+", metavar="CHAPTER")
    p.add_argument(
        "--out",
        default="_output",
        help="folder for executed notebooks and chapter outputs (default _output)",
    )
    common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "strip", help="remove outputs from notebooks (book/*.ipynb by default)"
    )
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    p.set_defaults(func=cmd_strip)

    p = sub.add_parser("build", help="execute every chapter and build the HTML book")
    p.add_argument(
        "--force",
        action="store_true",
        help="re-execute chapters even when notebook, parameters and package "
        "are unchanged",
    )
    common(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "sweep",
        help="run a chapter over a parameter grid on submitit (local or Slurm)",
        description="Every combination of the -p values is one papermill run of the "
        "chapter with its own output_dir. -p NAME=V1,V2 splits on top-level commas: "
        "-p lr=1e-3,1e-2 is two values, -p 'lm_widths=[32,64],[64,128]' two lists.",
    )
    p.add_argument("chapter", metavar="CHAPTER")
    p.add_argument("--profile", default=None, help=f"one of {list(PROFILES)}")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="NAME=V1,V2",
        default=[],
        help="grid values of a parameter (top-level commas separate values); repeatable",
    )
    p.add_argument(
        "--executor", default="local", help="'local' (this machine) or 'slurm' (sbatch)"
    )
    p.add_argument("--partition", default=None, help="Slurm partition")
    p.add_argument(
        "--gpus-per-job",
        type=int,
        default=None,
        help="GPUs per point (Slurm: --gpus-per-node; local: default all visible)",
    )
    p.add_argument("--cpus-per-job", type=int, default=None, help="CPUs per point")
    p.add_argument(
        "--time", type=int, default=None, help="time limit per point in minutes"
    )
    p.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help="points running at once (local default: half the cores; Slurm: all)",
    )
    p.add_argument(
        "--out", default=None, help="sweep folder (default _sweeps/CHAPTER-PROFILE)"
    )
    p.add_argument("--allow-cpu-full", action="store_true", help="as for run")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel")
    p.add_argument(
        "--timeout", type=int, default=None, help="per-cell timeout in seconds"
    )
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("publish", help="push _build/html to a gh-pages branch")
    p.add_argument(
        "--remote", default="origin", help="git remote name or URL (default origin)"
    )
    p.add_argument("--branch", default="gh-pages", help="branch (default gh-pages)")
    p.add_argument("--html", default=None, help="site folder (default _build/html)")
    p.set_defaults(func=cmd_publish)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except ParameterError as e:
        print(f"thermo-nb: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
