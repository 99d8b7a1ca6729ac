"""Parameter sweeps of one chapter on submitit: ``thermo-nb sweep``.

``thermo-nb sweep CHAPTER --profile P -p NAME=V1,V2 ... --executor local|slurm``

Every combination of the ``-p`` values (their Cartesian product) is one *grid point*: one
papermill run of the chapter with its own ``output_dir``, submitted as one job through
`submitit <https://github.com/facebookincubator/submitit>`_ (its local executor runs the
jobs as subprocesses of this machine; its Slurm executor submits them with ``sbatch``).

Grid syntax
-----------
``-p NAME=V1,V2,...`` splits the value on the commas at the top level only; commas
inside brackets, braces or quotes belong to the value. Each value is parsed like
``thermo-nb run -p`` (YAML). So ``-p lr=1e-3,1e-2`` has two values,
``-p lm_widths=[32,64]`` one (a list), and ``-p 'lm_widths=[32,64],[64,128]'`` two lists.
A ``-p`` with one value fixes that parameter for every point.

Layout of ``--out DIR`` (default ``_sweeps/<chapter>-<profile>``)
------------------------------------------------------------------
``DIR/points/<point>/``
    one folder per point: ``<chapter>.ipynb`` (executed notebook), ``<chapter>.log``
    (papermill log), ``<chapter>/`` (the point's ``output_dir``: ``scorecard.json``,
    figures, result cache) and ``<chapter>.key`` (written after success).
``DIR/submitit/``
    submitit's pickles and the jobs' stdout/stderr.
``DIR/sweep.csv``
    every finished point's scorecard rows with the point's parameters.
``DIR/points.csv``
    one row per point: parameters, status, seconds, notebook and log paths.

A point is *finished* when its ``scorecard.json`` exists and its key file matches the
fingerprint of the notebook, the point's parameters and the ``thermo_nb`` source (the
same rule as ``thermo-nb build``); re-submitting the sweep skips finished points. An
interrupted point is simply run again: chapters cache their expensive results under
``output_dir/cache`` and checkpoint long loops, so it resumes. Each job holds a lock on
its point folder, so two submissions never run the same point at the same time.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .jobs import (
    ChapterFailed,
    Job,
    build_jobs,
    execute_job,
    job_fingerprint,
    repo_root,
    resolve_profile,
)
from .params import ParameterError, parse_cli_value

EXECUTORS = ("local", "slurm")
_OPEN = {"[": "]", "{": "}", "(": ")"}


# ----------------------------------------------------------------------------- grid


def split_top_level(text: str, name: str) -> list[str]:
    """Split ``text`` on commas outside brackets, braces, parentheses and quotes.

    Parameters
    ----------
    text : str
        The ``V1,V2,...`` part of ``-p NAME=V1,V2,...``.
    name : str
        The parameter, named in error messages.

    Returns
    -------
    list of str
        The values, stripped, in order.

    Raises
    ------
    ParameterError
        Unbalanced brackets or quotes, or an empty value (``1,,2`` or a trailing comma).
    """
    parts, buf, stack, quote = [], [], [], None
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            stack.append(_OPEN[ch])
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                raise ParameterError(
                    f"parameter {name!r}: unbalanced {ch!r} in grid value {text!r}"
                )
        elif ch == "," and not stack:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    if quote or stack:
        what = f"quote {quote}" if quote else f"bracket (missing {stack[-1]!r})"
        raise ParameterError(
            f"parameter {name!r}: unclosed {what} in grid value {text!r}"
        )
    parts.append("".join(buf).strip())
    if any(p == "" for p in parts):
        raise ParameterError(
            f"parameter {name!r}: empty value in grid {text!r}; write the values "
            "separated by single commas, e.g. -p lr=1e-3,1e-2"
        )
    return parts


def parse_grid(pairs: list[str]) -> dict[str, list]:
    """``-p NAME=V1,V2`` pairs as ``{NAME: [v1, v2]}`` (values parsed as YAML).

    Raises
    ------
    ParameterError
        Missing ``=``, a name given twice, bad grid syntax, or ``output_dir`` (set per
        point by the sweep).
    """
    grid: dict[str, list] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ParameterError(
                f"-p expects NAME=V1,V2,... (or CHAPTER.NAME=...), got {pair!r}"
            )
        name, text = (s.strip() for s in pair.split("=", 1))
        if not name:
            raise ParameterError(f"-p {pair!r}: the parameter name is empty")
        if name in grid:
            raise ParameterError(
                f"parameter {name!r} is given twice; list every value in one -p "
                f"{name}=V1,V2,..."
            )
        if name.split(".")[-1] in ("output_dir", "profile"):
            raise ParameterError(
                f"parameter {name!r} cannot be swept: the sweep gives every point its "
                "own output_dir under --out, and the profile is --profile"
            )
        grid[name] = [parse_value(v) for v in split_top_level(text, name)]
    return grid


def parse_value(text: str):
    """One grid value: YAML like ``thermo-nb run -p``, except that numbers YAML 1.1 reads
    as strings (``1e-3``, ``1E5``: no dot) are numbers, as a reader expects."""
    value = parse_cli_value(text)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+", value):
        return float(value)
    return value


def grid_points(grid: dict[str, list]) -> list[dict]:
    """The Cartesian product of the grid, in the order given (last name fastest)."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def point_name(point: dict, varying: list[str] | None = None) -> str:
    """A readable, unique and stable folder name: ``seed-0_lr-0.001_<hash>``.

    The readable part shows the ``varying`` parameters (default: all); the hash of
    every parameter of the point is its identity (:func:`point_folder` reuses a folder
    with the same hash, so a point keeps its folder when the grid changes shape).
    """
    digest = hashlib.sha256(
        json.dumps(point, sort_keys=True, default=str).encode()
    ).hexdigest()[:8]
    shown = point if varying is None else {k: point[k] for k in varying}
    slug = "_".join(f"{k.split('.')[-1]}-{json.dumps(v)}" for k, v in shown.items())
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", slug.replace(" ", "")).strip("_")[:80]
    return f"{slug}_{digest}" if slug else digest


def point_folder(points_dir: Path, point: dict, varying: list[str]) -> Path:
    """The folder of a point: an existing one with the point's hash, else a new name."""
    name = point_name(point, varying)
    digest = name.rsplit("_", 1)[-1]
    for old in sorted(points_dir.glob(f"*{digest}")):
        if old.is_dir() and old.name.rsplit("_", 1)[-1] == digest:
            return old
    return points_dir / name


# ----------------------------------------------------------------------------- points


@dataclass
class Point:
    """One grid point: its parameters, folder and the validated papermill job."""

    name: str
    params: dict
    folder: Path
    job: Job
    status: str = "pending"  # pending, skipped, running, done, failed
    seconds: float | None = None
    error: str = ""
    logs: list[str] = field(default_factory=list)


def is_finished(job) -> bool:
    """``scorecard.json`` exists and the key file matches the current fingerprint."""
    key = job.output.with_suffix(".key")
    return (
        (job.output_dir / "scorecard.json").exists()
        and key.exists()
        and key.read_text() == job_fingerprint(job)
    )


def plan_points(
    chapter: str,
    profile: str | None,
    grid: dict[str, list],
    out: Path,
    root: Path,
    *,
    allow_cpu_full: bool = False,
) -> list[Point]:
    """Validate every point (values, ``output_dir``, planned memory) before any submission.

    Raises
    ------
    ParameterError
        Naming the point and the parameter.
    """
    points = []
    varying = [k for k, values in grid.items() if len(values) > 1]
    for params in grid_points(grid):
        folder = point_folder(out / "points", params, varying)
        name = folder.name
        try:
            (job,) = build_jobs(
                [chapter],
                profile,
                dict(params),
                folder,
                root,
                allow_cpu_full=allow_cpu_full,
            )
        except ParameterError as e:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "(no -p)"
            raise ParameterError(f"grid point {shown}: {e}") from None
        points.append(Point(name, params, folder, job))
    return points


# ----------------------------------------------------------------------------- the job


def run_point(job, kernel: str, timeout: int | None, threads: int | None) -> dict:
    """Execute one grid point (this runs inside the submitit job).

    Takes an exclusive lock on the point's folder (a second submission of the same point
    waits for the first), skips the point if it finished meanwhile, runs papermill and
    writes the key file after success.

    Returns
    -------
    dict
        ``status`` ("done", "skipped" or "failed"), ``seconds``, ``error``, ``logs``.
    """
    job.output.parent.mkdir(parents=True, exist_ok=True)
    with open(job.output.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_finished(job):
            return {"status": "skipped", "seconds": 0.0, "error": "", "logs": []}
        job.output.with_suffix(".key").unlink(missing_ok=True)
        try:
            secs = execute_job(
                job, kernel, timeout, progress_bars=False, threads=threads
            )
        except ChapterFailed as e:
            logs = sorted(map(str, job.output.parent.glob("*.log")))
            return {"status": "failed", "seconds": None, "error": str(e), "logs": logs}
        job.output.with_suffix(".key").write_text(job_fingerprint(job))
        return {"status": "done", "seconds": secs, "error": "", "logs": [str(job.log)]}


# ----------------------------------------------------------------------------- executors


def check_executor(executor: str, partition: str | None = None) -> None:
    """Refuse an unknown ``--executor``, Slurm without ``sbatch``, local ``--partition``.

    Raises
    ------
    ParameterError
        Naming the option.
    """
    if executor not in EXECUTORS:
        raise ParameterError(
            f"--executor: unknown executor {executor!r}; valid executors: "
            f"{list(EXECUTORS)}"
        )
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ParameterError(
            "--executor slurm: `sbatch` is not on the PATH, so no Slurm cluster is "
            "reachable from here; run on a Slurm login node, or use --executor local"
        )
    if executor == "local" and partition:
        raise ParameterError("--partition: applies to --executor slurm only")


def make_executor(
    executor: str,
    folder: Path,
    *,
    partition: str | None = None,
    gpus_per_job: int | None = None,
    time_min: int = 24 * 60,
    max_parallel: int | None = None,
    cpus_per_job: int | None = None,
):
    """A configured submitit executor.

    Raises
    ------
    ParameterError
        Unknown ``--executor``, or ``--executor slurm`` without ``sbatch`` on the PATH.
    """
    import submitit

    check_executor(executor, partition)
    if executor == "slurm":
        ex = submitit.SlurmExecutor(folder=str(folder / "%j"), max_num_timeout=0)
        kw = {"time": time_min, "ntasks_per_node": 1, "nodes": 1}
        if partition:
            kw["partition"] = partition
        if gpus_per_job:
            kw["gpus_per_node"] = gpus_per_job
        if cpus_per_job:
            kw["cpus_per_task"] = cpus_per_job
        if max_parallel:
            kw["array_parallelism"] = max_parallel
        ex.update_parameters(job_name="thermo-sweep", **kw)
        return ex
    ex = submitit.LocalExecutor(folder=str(folder / "%j"), max_num_timeout=0)
    kw = {"timeout_min": time_min}
    if gpus_per_job is None:
        # submitit sets CUDA_VISIBLE_DEVICES to the first gpus_per_node devices (none by
        # default); without --gpus-per-job the jobs see this machine's GPUs as we do
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        kw["setup"] = [
            "unset CUDA_VISIBLE_DEVICES"
            if visible is None
            else f"export CUDA_VISIBLE_DEVICES={shlex.quote(visible)}"
        ]
    else:
        kw["gpus_per_node"] = gpus_per_job
    ex.update_parameters(**kw)
    return ex


# ----------------------------------------------------------------------------- sweep


def _progress(points: list[Point]) -> str:
    count = {s: 0 for s in ("done", "skipped", "running", "failed", "pending")}
    for p in points:
        count[p.status] += 1
    finished = count["done"] + count["skipped"]
    return (
        f"[sweep] finished {finished}/{len(points)} ({count['skipped']} skipped), "
        f"running {count['running']}, failed {count['failed']}, "
        f"pending {count['pending']}"
    )


def run_sweep(
    points: list[Point],
    executor,
    *,
    kernel: str = "python3",
    timeout: int | None = None,
    max_parallel: int | None = None,
    cpus_per_job: int | None = None,
    poll_s: float = 2.0,
    report_every_s: float = 30.0,
    out=sys.stdout,
) -> None:
    """Submit the unfinished points, wait for them and fill in each point's status.

    Finished points are not submitted. The local executor runs ``max_parallel`` jobs at
    a time (default: half the CPU cores, at least 1); on Slurm all jobs go in one array
    and ``--max-parallel`` becomes the array's parallelism. Progress is printed when it
    changes (and every ``report_every_s`` seconds).
    """
    import submitit

    todo = []
    for p in points:
        if is_finished(p.job):
            p.status = "skipped"
        else:
            todo.append(p)
    local = isinstance(executor, submitit.LocalExecutor)
    width = max_parallel or max(1, (os.cpu_count() or 1) // 2)
    if local:  # jobs side by side share the cores instead of oversubscribing them
        threads = max(1, (os.cpu_count() or 1) // min(width, len(todo) or 1))
    else:
        threads = cpus_per_job

    def args(p: Point) -> tuple:
        return (p.job, kernel, timeout, threads)

    running: dict = {}  # submitit job -> Point
    queue = list(todo)
    if not local and queue:
        with executor.batch():
            jobs = [executor.submit(run_point, *args(p)) for p in queue]
        for job, p in zip(jobs, queue):
            running[job] = p
            p.status = "running"
        queue = []
    print(_progress(points), file=out, flush=True)
    last, last_t = None, time.monotonic()
    while queue or running:
        while local and queue and len(running) < width:
            p = queue.pop(0)
            running[executor.submit(run_point, *args(p))] = p
            p.status = "running"
        for job in [j for j in running if j.done()]:
            _collect(job, running.pop(job))
        line = _progress(points)
        if line != last or time.monotonic() - last_t > report_every_s:
            print(line, file=out, flush=True)
            last, last_t = line, time.monotonic()
        if queue or running:
            time.sleep(poll_s)
    print(_progress(points), file=out, flush=True)


def _collect(job, p: Point) -> None:
    """Read a finished submitit job into its point (a crash of the job is a failure)."""
    try:
        res = job.result()
    except Exception as e:  # the job itself died: killed, out of memory, timeout
        res = {
            "status": "failed",
            "seconds": None,
            "error": f"submitit job {job.job_id} failed: {str(e)[-2000:]}",
            "logs": [str(job.paths.stderr), str(job.paths.stdout)],
        }
    p.status = res["status"]
    p.seconds = res["seconds"]
    p.error = res["error"]
    p.logs = res["logs"]
    if p.status == "failed":
        p.logs.append(str(job.paths.stderr))


def write_tables(points: list[Point], out: Path) -> tuple[Path, Path, dict]:
    """``sweep.csv`` (scorecard rows + parameters), ``points.csv``; verdict differences.

    Returns
    -------
    sweep_csv, points_csv : Path
    differing : dict
        ``{claim id: {verdict: [point names]}}`` for claims whose verdict is not the
        same at every finished point.
    """
    from .report import KEYS, load_scorecard

    names = list(dict.fromkeys(k for p in points for k in p.params))

    def cell(v):
        return v if isinstance(v, (str, int, float)) or v is None else json.dumps(v)

    rows, verdicts = [], {}
    for p in points:
        sc = p.job.output_dir / "scorecard.json"
        if p.status not in ("done", "skipped") or not sc.exists():
            continue
        for r in load_scorecard(sc):
            rows.append(
                {"point": p.name, **{n: cell(p.params.get(n)) for n in names}}
                | {k: cell(r[k]) for k in KEYS}
            )
            verdicts.setdefault(r["id"], {}).setdefault(r["verdict"], []).append(p.name)
    sweep_csv = out / "sweep.csv"
    _write_csv(sweep_csv, ["point", *names, *KEYS], rows)
    points_csv = out / "points.csv"
    _write_csv(
        points_csv,
        ["point", *names, "status", "seconds", "notebook", "logs"],
        [
            {"point": p.name, **{n: cell(p.params.get(n)) for n in names}}
            | {
                "status": p.status,
                "seconds": "" if p.seconds is None else f"{p.seconds:.1f}",
                "notebook": str(p.job.output),
                "logs": " ".join(p.logs) or str(p.job.log),
            }
            for p in points
        ],
    )
    differing = {cid: v for cid, v in verdicts.items() if len(v) > 1}
    return sweep_csv, points_csv, differing


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def cmd_sweep(args) -> int:
    """``thermo-nb sweep``: validate every point, submit, wait, tabulate.

    Returns
    -------
    int
        0 when every point finished, 1 when any failed (2 for bad input, from ``main``).
    """
    from .validation import writable_folder

    root = repo_root()
    grid = parse_grid(args.param)
    profile = resolve_profile(args.profile, {})
    out = args.out or f"_sweeps/{args.chapter}-{profile}"
    out = writable_folder(Path(out).expanduser().resolve(), "--out")
    check_executor(args.executor, args.partition)  # before validating every point
    for flag, value in (("--max-parallel", args.max_parallel), ("--time", args.time)):
        if value is not None and value < 1:
            raise ParameterError(f"{flag}: must be a positive integer, got {value}")
    if args.gpus_per_job is not None and args.gpus_per_job < 0:
        raise ParameterError(f"--gpus-per-job: must be >= 0, got {args.gpus_per_job}")
    # Slurm jobs with GPUs run where the GPU is, not on this (login) node: a full
    # profile is not a CPU run there (leave -p device=auto; "cuda" is checked here)
    on_gpus = args.executor == "slurm" and (args.gpus_per_job or 0) > 0
    points = plan_points(
        args.chapter,
        profile,
        grid,
        out,
        root,
        allow_cpu_full=args.allow_cpu_full or on_gpus,
    )
    executor = make_executor(
        args.executor,
        out / "submitit",
        partition=args.partition,
        gpus_per_job=args.gpus_per_job,
        time_min=args.time or 24 * 60,
        max_parallel=args.max_parallel,
        cpus_per_job=args.cpus_per_job,
    )
    print(
        f"[sweep] {args.chapter} (profile={profile}): {len(points)} point(s) on "
        f"--executor {args.executor} -> {out}",
        flush=True,
    )
    run_sweep(
        points,
        executor,
        kernel=args.kernel,
        timeout=args.timeout,
        max_parallel=args.max_parallel,
        cpus_per_job=args.cpus_per_job,
    )
    sweep_csv, points_csv, differing = write_tables(points, out)
    for p in points:
        if p.status == "failed":
            print(
                f"[sweep] FAILED point {p.name} ({p.params}); log(s): "
                + ", ".join(p.logs)
                + "\n"
                + p.error[-3000:],
                file=sys.stderr,
                flush=True,
            )
    varying = [k for k, values in grid.items() if len(values) > 1]
    by_name = {p.name: p for p in points}

    def where(name: str) -> str:
        params = by_name[name].params
        return "(" + ", ".join(f"{k}={params[k]!r}" for k in varying) + ")"

    for cid, by_verdict in differing.items():
        shown = "; ".join(
            f"{v} at {' '.join(map(where, ps))}" for v, ps in by_verdict.items()
        )
        print(f"[sweep] verdicts differ for claim {cid!r}: {shown}", flush=True)
    if not differing:
        print("[sweep] every claim has the same verdict at every finished point")
    print(f"[sweep] table: {sweep_csv}  points: {points_csv}", flush=True)
    return 1 if any(p.status == "failed" for p in points) else 0
