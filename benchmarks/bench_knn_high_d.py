"""Benchmark: k-NN entropy of few, very high-dimensional samples (the weight-space regime).

The ideal-gas and free-energy papers estimate entropies of ~1000 weight vectors with up to
1.5 million coordinates.  This script runs ``kl_entropy`` on N standard-normal samples of
dimension d (default N = 1000, d = 200,000: 1.5 GiB of float64 data, the largest that fits
this 24 GiB machine comfortably) in a fresh process and reports wall time, peak resident
memory above the data, the candidate-GEMM precision chosen, and how many rows needed the
exact float64 fallback.  It also checks the k-th neighbour distances of 20 rows against a
direct float64 computation.

Usage::

    python benchmarks/bench_knn_high_d.py [--n 1000] [--d 200000] [--device cpu]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

import thermo_nb.neighbors.search as knn


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--d", type=int, default=200_000)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.d, dtype=torch.float64, generator=gen)
    if args.device != "cpu":
        x = x.to(args.device)
    fallback_rows = []
    original = knn._exact_rows_float64

    def counting(xt, rows, *rest):
        fallback_rows.append(int(rows.numel()))
        return original(xt, rows, *rest)

    knn._exact_rows_float64 = counting
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    dist = knn.knn_distances(x, args.k)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # 20 rows checked against direct differences
    rows = torch.arange(0, args.n, max(1, args.n // 20))[:20].to(x.device)
    direct = torch.cdist(x[rows], x, compute_mode="donot_use_mm_for_euclid_dist")
    direct[torch.arange(rows.numel()), rows] = float("inf")
    ref = torch.topk(direct, args.k, dim=1, largest=False).values[:, -1]
    rel = float(((dist[rows] - ref).abs() / ref).max())
    bound = (2 * args.d + 10) * 2.0**-24
    precision = "float64" if bound > knn.FLOAT32_MAX_RELATIVE_BOUND else "float32"
    data_mib = x.numel() * 8 / 2**20
    print(
        f"| N | d | device | candidate GEMM | seconds | data (MiB) | extra peak RSS "
        f"(MiB) | fallback rows | max rel. error (20 rows) |\n|---|---|---|---|---|---|---|---|---|\n"
        f"| {args.n} | {args.d} | {x.device} | {precision} | {seconds:.1f} | {data_mib:.0f} | "
        f"{peak - before:.0f} | {sum(fallback_rows)} | {rel:.1e} |"
    )


if __name__ == "__main__":
    main()
