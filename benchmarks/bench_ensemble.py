"""Benchmark: vectorised ensembles and per-sample gradients against the best plain code.

Fair protocol: every implementation runs in this one process, on the same data, replicas,
seeds and minibatches; each is warmed up, then timed in ROTATING order (ABCD, BCDA, CDAB,
...) so that no side always runs first or right after another one; every case is timed
``--runs`` times (>= 5) and both the minimum and the median are reported.  Speed-ups are
baseline time / thermo_nb time, from the minima (ratio of medians alongside).  Each thread
count in ``--threads`` (default: 1 and 2) is one pass over everything.  The CPU allocator
is the DEFAULT one, as in a user's plain call; ``--tune-allocator`` opts in to
``thermo_nb.tune_cpu_allocator()`` (huge pages and glibc heap reuse) for both sides and is
labelled so in the output.

1. ``EnsembleTrainer`` (its default settings: the fused backend for an MLP) and
   ``EnsembleTrainer(backend="vmap")``, against (a) ``train_loop_reference``'s loop (one
   ``autograd.grad`` per replica and step) and (b) the best plain loop: one
   ``torch.optim.SGD(foreach=True)`` over all parameters of all replicas
   (``LoopEnsemble(update="foreach_sgd")``).  M = 50 MLPs 4 x 200 on the 8x8 digits, batch
   10, and the small 2 x 32 net.  Target: >= 5x the best plain loop.
2. ``per_sample_gradients(net, None, x, y)``, a plain call (no ``out=``), and its
   ``backend="vmap"``, against (a) a loop of ``autograd.grad`` over the 128 examples and
   (b) ``torch.func``: ``vmap(grad(loss_of_one))`` returning the per-layer gradients.
   Target: >= 10x the loop and not slower than ``torch.func``.

Usage::

    flock /tmp/bench.lock python benchmarks/bench_ensemble.py      # ~2 min, 2 CPU cores
    python benchmarks/bench_ensemble.py --quick    # seconds; exits 1 if a loop is faster
    python benchmarks/bench_ensemble.py --device cuda               # on a GPU box
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from thermo_nb import tune_cpu_allocator

# opt-in, before torch is imported (huge pages are read once); it applies to both sides
ALLOCATOR = (
    tune_cpu_allocator()
    if "--tune-allocator" in sys.argv
    else {"huge_pages": False, "keep_freed_memory": False}
)

import torch  # noqa: E402
from torch.func import functional_call, grad, vmap  # noqa: E402

from thermo_nb import (  # noqa: E402
    MLP,
    EnsembleTrainer,
    LoopEnsemble,
    load_digits_tensors,
    per_sample_gradients,
    resolve_device,
)

#: speed-up targets of issue 3 / issue 17 (thermo_nb default vs the named baseline)
ENSEMBLE_TARGET = ("loop + one SGD(foreach=True)", 5.0)
PER_SAMPLE_TARGETS = (("loop of autograd.grad", 10.0), ("torch.func vmap(grad)", 1.0))


NOTES = """How to read it.  `EnsembleTrainer (default)` is the trainer with its defaults,
i.e. the fused backend for a `thermo_nb.models.MLP` with the cross-entropy loss (batched
backpropagation, each weight update folded into the matmul that computes its gradient);
`backend="vmap"` is `vmap(grad_and_value(loss))` over the stacked parameters.  The two
loops train the same replicas on the same minibatches: `train_loop_reference` calls
`torch.autograd.grad` per replica and updates tensor by tensor; the best plain loop calls
`loss.backward()` per replica and then one `torch.optim.SGD(foreach=True)` step over the
parameters of all 50 replicas (`thermo_nb.LoopEnsemble(update="foreach_sgd")`).
`per_sample_gradients (default)` is a plain call without `out=`: its `(B, P)` result (69 MB
at 4 x 200) comes from `thermo_nb.runtime.output_pool`, a buffer reused once no tensor
refers to the previous result (allocated by numpy, i.e. in huge pages); the loop stacks
one `autograd.grad` row per example; `torch.func vmap(grad)` returns the per-layer
gradients (no `(B, P)` matrix).  Where the 50-MLP ensemble step's time goes (and why 1
thread stays under 5x): `results_ensemble_profile.md` (`profile_ensemble.py`).
"""


# ----------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rotations(names: list, runs: int) -> list:
    """Order of the cases in each run: ABC, BCA, CAB, ABC, ... (``runs`` orders)."""
    return [names[r % len(names) :] + names[: r % len(names)] for r in range(runs)]


def time_rotating(cases: dict, runs: int, warmup: int, device) -> dict:
    """Seconds per run of every case, measured in rotating order after a warm-up.

    Parameters
    ----------
    cases : dict name -> callable
        Each call is one timed run (all cases must do the same amount of work).
    runs : int
        Timed runs per case.
    warmup : int
        Untimed calls of every case first.
    device : torch.device

    Returns
    -------
    dict name -> list of float
        The ``runs`` wall-clock times of each case, in seconds.
    """
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in cases}
    for order in rotations(list(cases), runs):
        for name in order:
            _sync(device)
            t0 = time.perf_counter()
            cases[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def summarise(times: list, per: int) -> tuple:
    """``(min, median)`` in milliseconds per unit of work (``per`` units a run)."""
    return min(times) / per * 1e3, statistics.median(times) / per * 1e3


# ----------------------------------------------------------------------------- cases


def ensemble_cases(args, data, device, width: int, depth: int) -> tuple:
    """Timed callables (``args.steps`` SGD steps each) and the parameter differences
    between the implementations after 5 steps from the same start."""
    make = lambda: MLP(64, width, 10, depth=depth)  # noqa: E731
    kw = dict(lr=0.05, batch_size=args.batch, seed=0, device=device)

    def build():
        x, y = data.x_train, data.y_train
        return {
            "EnsembleTrainer (default)": EnsembleTrainer(
                make, args.replicas, x, y, **kw
            ),
            'EnsembleTrainer(backend="vmap")': EnsembleTrainer(
                make, args.replicas, x, y, backend="vmap", **kw
            ),
            "train_loop_reference (autograd.grad)": LoopEnsemble(
                make, args.replicas, x, y, **kw
            ),
            "loop + one SGD(foreach=True)": LoopEnsemble(
                make, args.replicas, x, y, update="foreach_sgd", **kw
            ),
        }

    check = build()
    for _ in range(5):
        for impl in check.values():
            impl.step()
    flat = {k: v.flat_params().cpu() for k, v in check.items()}
    ref = flat["EnsembleTrainer (default)"]
    diffs = {k: float((v - ref).abs().max()) for k, v in flat.items()}
    n_params = check["EnsembleTrainer (default)"].spec.n_params
    del check

    def runner(impl):
        def run():
            for _ in range(args.steps):
                impl.step()

        return run

    return {k: runner(v) for k, v in build().items()}, diffs, n_params


def per_sample_cases(args, data, device, width: int, depth: int) -> tuple:
    """Timed callables (``args.calls`` batches of per-sample gradients each) and the
    largest difference of each implementation's gradients from the default call's."""
    torch.manual_seed(0)
    net = MLP(64, width, 10, depth=depth).to(device)
    x, y = data.x_train[: args.psg_batch], data.y_train[: args.psg_batch]
    params = list(net.parameters())
    pdict = {k: v.detach() for k, v in net.named_parameters()}

    def autograd_loop():
        rows = []
        for i in range(x.shape[0]):
            loss = torch.nn.functional.cross_entropy(net(x[i : i + 1]), y[i : i + 1])
            grads = torch.autograd.grad(loss, params)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        return torch.stack(rows)

    def loss_of_one(p, xi, yi):
        out = functional_call(net, p, (xi.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, yi.unsqueeze(0))

    per_layer = vmap(grad(loss_of_one), in_dims=(None, 0, 0))
    impls = {
        "per_sample_gradients (default)": lambda: per_sample_gradients(net, None, x, y),
        'per_sample_gradients(backend="vmap")': lambda: per_sample_gradients(
            net, None, x, y, backend="vmap"
        ),
        "loop of autograd.grad": autograd_loop,
        "torch.func vmap(grad)": lambda: per_layer(pdict, x, y),
    }
    ref = impls["per_sample_gradients (default)"]().cpu()
    diffs = {}
    for name, fn in impls.items():
        g = fn()
        if isinstance(
            g, dict
        ):  # torch.func: per-layer tensors, flattened here to compare
            g = torch.cat([g[k].reshape(x.shape[0], -1) for k in pdict], dim=1)
        diffs[name] = float((g.cpu() - ref).abs().max())

    def runner(fn):
        def run():
            for _ in range(args.calls):
                fn()

        return run

    return {k: runner(v) for k, v in impls.items()}, diffs


# ----------------------------------------------------------------------------- report


def measure(args, data, device) -> list:
    """One record per (threads, benchmark, implementation)."""
    records = []
    configs = [(args.width, args.depth), (args.small_width, args.small_depth)]
    for threads in args.threads:
        torch.set_num_threads(threads)
        for width, depth in configs:
            t0 = time.perf_counter()
            cases, diffs, n_par = ensemble_cases(args, data, device, width, depth)
            times = time_rotating(cases, args.runs, args.warmup, device)
            bench = (
                f"ensemble SGD step, M={args.replicas} MLPs {depth} x {width} "
                f"({n_par} params each), batch {args.batch}"
            )
            records += _records(threads, bench, times, args.steps, diffs)
            _progress(threads, bench, t0)
        for width, depth in configs:
            t0 = time.perf_counter()
            cases, diffs = per_sample_cases(args, data, device, width, depth)
            times = time_rotating(cases, args.runs, args.warmup, device)
            bench = (
                f"per-sample gradients, batch {args.psg_batch}, MLP {depth} x {width}"
            )
            records += _records(threads, bench, times, args.calls, diffs)
            _progress(threads, bench, t0)
    return records


def _progress(threads: int, bench: str, t0: float) -> None:
    seconds = time.perf_counter() - t0
    print(f"[{threads} thread(s)] {bench}: {seconds:.0f} s", file=sys.stderr)


def _records(threads, bench, times, per, diffs) -> list:
    out = []
    for name, t in times.items():
        t_min, t_med = summarise(t, per)
        out.append(
            dict(
                threads=threads,
                bench=bench,
                impl=name,
                min_ms=t_min,
                median_ms=t_med,
                diff=diffs[name],
            )
        )
    return out


def speedups(records: list) -> list:
    """thermo_nb implementation vs baseline, per thread count and benchmark."""
    rows = []
    keys = {(r["threads"], r["bench"]) for r in records}
    for threads, bench in sorted(keys, key=lambda k: (k[0], records_order(records, k))):
        group = [r for r in records if (r["threads"], r["bench"]) == (threads, bench)]
        ours = [r for r in group if _is_thermo_nb(r["impl"])]
        base = [r for r in group if not _is_thermo_nb(r["impl"])]
        for o in ours:
            for b in base:
                rows.append(
                    dict(
                        threads=threads,
                        bench=bench,
                        impl=o["impl"],
                        baseline=b["impl"],
                        ratio_min=b["min_ms"] / o["min_ms"],
                        ratio_median=b["median_ms"] / o["median_ms"],
                        target=_target(o["impl"], b["impl"], bench),
                    )
                )
    return rows


def records_order(records, key) -> int:
    return next(i for i, r in enumerate(records) if (r["threads"], r["bench"]) == key)


def _is_thermo_nb(impl: str) -> bool:
    return impl.startswith(("EnsembleTrainer", "per_sample_gradients"))


def _target(impl: str, baseline: str, bench: str) -> "float | None":
    """The speed-up a default thermo_nb call should reach over this baseline (the
    headline, large-net benchmarks only); None where nothing is promised."""
    if "(default)" not in impl or " x 200" not in bench:
        return None
    targets = dict([ENSEMBLE_TARGET, *PER_SAMPLE_TARGETS])
    return targets.get(baseline)


def direction_failures(ratios: list) -> list:
    """Where a plain loop beat thermo_nb's default call (ratio of minima below 1)."""
    return [
        r
        for r in ratios
        if "(default)" in r["impl"] and "loop" in r["baseline"] and r["ratio_min"] < 1.0
    ]


def format_tables(records: list, ratios: list) -> str:
    lines = [
        "| threads | benchmark | implementation | min (ms) | median (ms) | "
        "max abs diff vs default |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['threads']} | {r['bench']} | {r['impl']} | {r['min_ms']:.2f} | "
            f"{r['median_ms']:.2f} | {r['diff']:.1e} |"
        )
    lines += [
        "",
        "| threads | benchmark | thermo_nb | baseline | speed-up (min) | "
        "speed-up (median) | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ratios:
        target = "" if r["target"] is None else f">= {r['target']:g}x"
        met = (
            ""
            if r["target"] is None
            else ("yes" if r["ratio_min"] >= r["target"] else "NO")
        )
        lines.append(
            f"| {r['threads']} | {r['bench']} | {r['impl']} | {r['baseline']} | "
            f"{r['ratio_min']:.1f}x | {r['ratio_median']:.1f}x | {target} | {met} |"
        )
    return "\n".join(lines)


def _machine(device, args) -> str:
    try:
        load = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "n/a"
    try:
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        thp = "n/a"
    allocator = (
        "thermo_nb.tune_cpu_allocator() (opt-in `--tune-allocator`): huge pages "
        f"{ALLOCATOR['huge_pages']}, freed memory kept in the heap "
        f"{ALLOCATOR['keep_freed_memory']}"
        if "--tune-allocator" in sys.argv
        else "default (glibc malloc and torch's CPU allocator untouched, as in a user's "
        "plain call)"
    )
    return (
        f"- date (UTC): {datetime.now(timezone.utc):%Y-%m-%d %H:%M}\n"
        f"- device: {device} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load} at the end); torch "
        f"{torch.__version__}; transparent huge pages: `{thp}`\n"
        f"- threads: {', '.join(map(str, args.threads))} (`torch.set_num_threads`, the "
        f"same for every implementation of a row)\n"
        f"- CPU allocator: {allocator}\n"
        f"- protocol: one process, warm-up of {args.warmup} run(s) per case, then "
        f"{args.runs} runs per case in rotating order; a run is {args.steps} SGD steps "
        f"(ensembles) or {args.calls} calls (per-sample gradients); times are per step or "
        f"per call; speed-up = baseline / thermo_nb, from the minima (and the medians)\n"
        f"- 'max abs diff': largest difference from the default thermo_nb call, of the "
        f"parameters after 5 steps from the same start (ensembles) or of the gradients "
        f"(float32)\n"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="seconds, 1 thread: exit 1 if a plain loop beats thermo_nb's default call",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, nargs="+", default=None)
    p.add_argument("--replicas", type=int, default=50)
    p.add_argument("--width", type=int, default=200)
    p.add_argument("--depth", type=int, default=4, help="hidden layers of the MLP")
    p.add_argument("--small-width", type=int, default=32)
    p.add_argument("--small-depth", type=int, default=2)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--psg-batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=None, help="SGD steps per timed run")
    p.add_argument("--calls", type=int, default=None, help="calls per timed run")
    p.add_argument("--runs", type=int, default=None, help="timed runs per case (>= 5)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument(
        "--tune-allocator",
        action="store_true",
        help="opt in to thermo_nb.tune_cpu_allocator() for both sides (labelled)",
    )
    p.add_argument(
        "--output",
        default=None,
        help="markdown file (default: benchmarks/results_ensemble.md; none with --quick)",
    )
    args = p.parse_args(argv)
    args.threads = args.threads or ([1] if args.quick else [1, 2])
    args.steps = args.steps or (3 if args.quick else 10)
    args.calls = args.calls or (1 if args.quick else 3)
    args.runs = max(5, args.runs or (5 if args.quick else 7))
    if args.output is None and not args.quick:
        args.output = str(Path(__file__).with_name("results_ensemble.md"))
    os.environ.setdefault("THERMO_NB_PROGRESS", "0")
    device = resolve_device(args.device)
    data = load_digits_tensors(device=device)

    records = measure(args, data, device)
    ratios = speedups(records)
    tables = format_tables(records, ratios)
    print(tables)
    failures = direction_failures(ratios)
    for f in failures:
        print(
            f"FAIL: {f['baseline']} is faster than {f['impl']} ({f['bench']}, "
            f"{f['threads']} thread(s): {f['ratio_min']:.2f}x)",
            file=sys.stderr,
        )
    if args.output:
        cmd = "python " + " ".join(
            [os.path.relpath(sys.argv[0])] + (sys.argv[1:] if argv is None else argv)
        )
        text = (
            "# Benchmark: vectorised ensembles and per-sample gradients\n\n"
            f"Command (on the shared 2-core machine, serialised with other timings):\n\n"
            f"    flock /tmp/bench.lock {cmd}\n\n"
            f"{_machine(device, args)}\n{tables}\n\n{NOTES}"
        )
        Path(args.output).write_text(text)
        print(f"written to {args.output}")
    return 1 if failures and args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
