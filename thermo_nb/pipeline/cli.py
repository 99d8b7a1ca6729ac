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
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .jobs import (
    ChapterFailed,  # noqa: F401  (re-exported for scripts)
    Job,
    build_jobs,
    job_fingerprint,
    parse_params,
    relative_to_folder,
    repo_root,
    run_jobs,
)
from .params import PROFILES, ParameterError
from .validation import writable_folder

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


def cmd_run(args) -> int:
    if args.dry_run:
        from .dryrun import dry_run

        return dry_run(
            args.chapters,
            args.profile,
            parse_params(args.param),
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
        job.params["output_dir"] = relative_to_folder(outputs / job.chapter, job.cwd)

    def up_to_date(job: Job) -> bool:
        key = job.output.with_suffix(".key")
        sc = job.output_dir / "scorecard.json"
        return (
            not args.force
            and key.exists()
            and job.output.exists()
            and sc.exists()
            and key.read_text() == job_fingerprint(job)
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
        job.output.with_suffix(".key").write_text(job_fingerprint(job))

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
    from .sweep import cmd_sweep as run

    return run(args)


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
