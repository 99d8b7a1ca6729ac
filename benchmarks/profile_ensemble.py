"""Profile: where the time of one fused ensemble SGD step goes, and what bounds it.

Companion of ``bench_ensemble.py`` for the 50-MLP (4 x 200, batch 10) ensemble: it
measures, at each thread count,

* the step (``EnsembleTrainer`` defaults) and the best plain loop (one
  ``SGD(foreach=True)``), hence the step time a 5x speed-up needs;
* the step's arithmetic (FLOPs) and weight traffic (bytes) against this CPU's measured
  large-sgemm throughput and memory bandwidth;
* the batched ``10 x 200 x 200`` GEMMs the step is made of, with their weights in cache
  ("hot") and not ("cold"), and the share of the step spent in GEMMs (torch.profiler);
* the all-in-cache floor of the same step (M = 4 replicas, time per replica x 50) and the
  step computed in cache-sized chunks of replicas.

Default CPU allocator (the allocator does not change this step: it allocates only small
activations).  Times are minima over rotating repeats.  Writes
``benchmarks/results_ensemble_profile.md``.

Usage::

    flock /tmp/bench.lock python benchmarks/profile_ensemble.py      # ~1 min
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from thermo_nb import MLP, EnsembleTrainer, LoopEnsemble, load_digits_tensors
from thermo_nb.training.ensemble_fused import fused_mlp_sgd_step

GEMM_OPS = ("aten::bmm", "aten::baddbmm", "aten::baddbmm_")


def best_time(fn, repeats: int = 7, inner: int = 10) -> float:
    """Smallest mean time of ``inner`` calls over ``repeats`` repeats (seconds)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def layer_shapes(width: int, depth: int) -> list:
    """``(in, out)`` of every linear layer of ``MLP(64, width, 10, depth)``."""
    dims = [64] + [width] * depth + [10]
    return list(zip(dims[:-1], dims[1:]))


def step_flops_and_weight_bytes(shapes: list, m: int, b: int) -> tuple:
    """FLOPs of one fused step (forward, input gradient, weight update: three
    ``2 B in out`` GEMMs per layer, no input gradient for the first layer) and the bytes of
    weights it reads and writes (read in the forward, read for the input gradient, read and
    written by the update), float32."""
    flops = sum(
        (3 if i else 2) * 2 * b * n_in * n_out for i, (n_in, n_out) in enumerate(shapes)
    )
    traffic = sum(
        (4 if i else 3) * 4 * n_in * n_out for i, (n_in, n_out) in enumerate(shapes)
    )
    return m * flops, m * traffic


def machine_rates(threads: int) -> dict:
    """Large-sgemm throughput and streaming bandwidths of this CPU (256 MB arrays)."""
    a = torch.randn(2048, 2048)
    t_mm = best_time(lambda: a @ a, repeats=5, inner=3)
    big = torch.randn(64 * 2**20)
    dst = torch.empty_like(big)
    t_read = best_time(big.sum, repeats=5, inner=3)
    t_copy = best_time(lambda: dst.copy_(big), repeats=5, inner=3)
    return {
        "sgemm_gflops": 2 * 2048**3 / t_mm / 1e9,
        "read_gbs": big.nbytes / t_read / 1e9,
        "copy_gbs": 2 * big.nbytes / t_copy / 1e9,
    }


def small_gemm_rates(m: int = 50, b: int = 10, d: int = 200) -> dict:
    """Microseconds per replica of the step's three batched GEMMs on a ``d x d`` layer,
    with the weights in cache (one 8 MB set reused) or not (cycling through 48 MB)."""
    sets = [torch.randn(m, d, d) * 0.05 for _ in range(6)]
    h, dz = torch.randn(m, b, d), torch.randn(m, b, d) * 1e-3
    ops = {
        "forward h W^T": lambda w: torch.bmm(h, w.transpose(1, 2)),
        "input gradient dz W": lambda w: torch.bmm(dz, w),
        "update W += dz^T h": lambda w: w.baddbmm_(dz.transpose(1, 2), h),
    }
    out = {}
    for name, op in ops.items():
        hot = best_time(lambda op=op: op(sets[0]), inner=6) / m * 1e6
        cold = best_time(lambda op=op: [op(w) for w in sets], inner=2) / 6 / m * 1e6
        out[name] = (hot, cold, 2 * b * d * d / (hot * 1e-6) / 1e9)
    return out


def gemm_share(trainer, steps: int = 30) -> tuple:
    """(ms per step in the batched GEMMs, ms per step in everything else)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step()
    events = prof.key_averages()
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS)
    total = sum(e.self_cpu_time_total for e in events)
    return gemm / steps / 1e3, (total - gemm) / steps / 1e3


def chunked_step(trainer, chunk: int):
    """The fused step applied to consecutive chunks of ``chunk`` replicas."""

    def step():
        idx = trainer.sampler.next()
        xb, yb = trainer.x[idx], trainer.y[idx]
        for a in range(0, trainer.n_replicas, chunk):
            s = slice(a, a + chunk)
            fused_mlp_sgd_step(
                {k: v[s] for k, v in trainer.params.items()},
                trainer._fused_layers,
                trainer._activation,
                xb[s],
                yb[s],
                trainer.lr[s],
                None,
                trainer.diverged[s],
            )

    return step


def profile_threads(args, data, threads: int) -> list:
    torch.set_num_threads(threads)
    make = lambda: MLP(64, args.width, 10, depth=args.depth)  # noqa: E731
    kw = dict(lr=0.05, batch_size=args.batch, seed=0)
    x, y = data.x_train, data.y_train
    trainer = EnsembleTrainer(make, args.replicas, x, y, **kw)
    loop = LoopEnsemble(make, args.replicas, x, y, update="foreach_sgd", **kw)
    small = EnsembleTrainer(make, 4, x, y, **kw)
    t_loop = best_time(loop.step, repeats=5, inner=3)
    t_step = best_time(trainer.step, inner=10)
    t_hot = best_time(small.step, inner=20) / 4 * args.replicas
    gemm_ms, rest_ms = gemm_share(trainer)
    chunks = {
        c: best_time(chunked_step(trainer, c), repeats=5, inner=10) for c in (5, 10, 25)
    }
    flops, traffic = step_flops_and_weight_bytes(
        layer_shapes(args.width, args.depth), args.replicas, args.batch
    )
    rates = machine_rates(threads)
    gemms = small_gemm_rates(args.replicas, args.batch, args.width)
    lines = [
        f"### {threads} thread(s)",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| best plain loop (one SGD(foreach=True)), per step | {t_loop * 1e3:.1f} ms |",
        f"| step time a 5x speed-up needs | {t_loop * 1e3 / 5:.1f} ms |",
        f"| `EnsembleTrainer` step (fused), M = {args.replicas} | {t_step * 1e3:.1f} ms "
        f"({t_loop / t_step:.1f}x the loop) |",
        f"| of which batched GEMMs / everything else (torch.profiler) | {gemm_ms:.1f} ms "
        f"/ {rest_ms:.1f} ms |",
        f"| same step with all weights in cache (M = 4, per replica x {args.replicas}) "
        f"| {t_hot * 1e3:.1f} ms (at most {t_loop / t_hot:.1f}x the loop) |",
        "| step in chunks of 5 / 10 / 25 replicas | "
        + " / ".join(f"{chunks[c] * 1e3:.1f}" for c in (5, 10, 25))
        + " ms |",
        f"| arithmetic per step | {flops / 1e6:.0f} MFLOP -> {flops / t_step / 1e9:.0f} "
        f"GFLOP/s achieved |",
        f"| this CPU's 2048^3 sgemm | {rates['sgemm_gflops']:.0f} GFLOP/s "
        f"(the step at that rate: {flops / rates['sgemm_gflops'] / 1e6:.1f} ms) |",
        f"| weight traffic per step (read 3x, written 1x) | {traffic / 1e6:.0f} MB -> "
        f"{traffic / t_step / 1e9:.1f} GB/s achieved |",
        f"| this CPU's streaming read / copy bandwidth (256 MB) | "
        f"{rates['read_gbs']:.0f} / {rates['copy_gbs']:.0f} GB/s (the weight traffic at "
        f"the read rate: {traffic / rates['read_gbs'] / 1e6:.1f} ms) |",
    ]
    for name, (hot, cold, gflops) in gemms.items():
        lines.append(
            f"| batched GEMM {args.batch} x {args.width} x {args.width}, {name}, per "
            f"replica | {hot:.1f} us in cache ({gflops:.0f} GFLOP/s), {cold:.1f} us not |"
        )
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--replicas", type=int, default=50)
    p.add_argument("--width", type=int, default=200)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument(
        "--output",
        default=str(Path(__file__).with_name("results_ensemble_profile.md")),
    )
    args = p.parse_args(argv)
    os.environ.setdefault("THERMO_NB_PROGRESS", "0")
    data = load_digits_tensors(device="cpu")
    body = []
    for threads in args.threads:
        body += profile_threads(args, data, threads) + [""]
    cmd = "python " + " ".join(
        [os.path.relpath(sys.argv[0])] + (sys.argv[1:] if argv is None else argv)
    )
    text = (
        "# Profile: the fused ensemble SGD step\n\n"
        f"Command:\n\n    flock /tmp/bench.lock {cmd}\n\n"
        f"- date (UTC): {datetime.now(timezone.utc):%Y-%m-%d %H:%M}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; torch "
        f"{torch.__version__}; default CPU allocator; minima over repeats\n"
        f"- M = {args.replicas} MLPs {args.depth} x {args.width} on the 8x8 digits, "
        f"batch {args.batch}\n\n" + "\n".join(body)
    )
    print(text)
    Path(args.output).write_text(text)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
