"""GPU benchmark: exact k-NN entropy of N=100k points in d=1000 (k=5) on CUDA.

Measures, in one process on the same GPU:

* the fp32 matmul throughput (TF32 off) of a large square ``torch.mm``: the ceiling;
* the time of ``thermo_nb.knn_distances`` (the exact k-NN engine) and of
  ``thermo_nb.kl_entropy`` on float64 data already on the GPU;
* the distance computation's effective throughput, 2 N^2 (d+1) flop / time (the GEMM work
  of the brute force), as a fraction of the measured matmul throughput;
* a correctness spot check: k-th neighbour distances of 256 rows against a float64
  ``torch.cdist`` brute force without the matmul shortcut.

Without a CUDA GPU the script prints why and exits with status 1 (nothing is measured).

Usage::

    .venv/bin/python benchmarks/bench_knn_gpu.py [--n 100000] [--d 1000] [--k 5]
        [--append-to benchmarks/results_knn.md]
"""

from __future__ import annotations

import argparse
import sys
import time


def cuda_seconds(fn, repeats):
    import torch

    torch.cuda.synchronize()
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times), out


def matmul_tflops(size, repeats):
    import torch

    a = torch.randn(size, size, device="cuda", dtype=torch.float32)
    b = torch.randn(size, size, device="cuda", dtype=torch.float32)
    torch.mm(a, b)  # warm-up (cuBLAS handle, kernel selection)
    t, _ = cuda_seconds(lambda: torch.mm(a, b), repeats)
    return 2.0 * size**3 / t / 1e12


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument(
        "--append-to", default=None, help="markdown file to append the result to"
    )
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        sys.exit(
            "bench_knn_gpu.py: no CUDA GPU is visible to torch "
            f"(torch {torch.__version__}, torch.version.cuda={torch.version.cuda}); this benchmark "
            "needs one. Nothing was measured. Run it on a GPU machine with a CUDA build of torch."
        )
    import thermo_nb

    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # true fp32, as inside knn_distances
    try:
        name = torch.cuda.get_device_name()
        peak = matmul_tflops(args.matmul_size, args.repeats)
        gen = torch.Generator(device="cuda").manual_seed(0)
        x = torch.randn(
            args.n, args.d, device="cuda", dtype=torch.float64, generator=gen
        )
        thermo_nb.knn_distances(x[:4096], args.k)  # warm-up
        t_knn, eps = cuda_seconds(
            lambda: thermo_nb.knn_distances(x, args.k), args.repeats
        )
        t_h, h = cuda_seconds(lambda: thermo_nb.kl_entropy(x, k=args.k), 1)
        peak_mem = torch.cuda.max_memory_allocated() / 2**30
        rows = torch.arange(256, device="cuda")
        ref = torch.cdist(x[rows], x, compute_mode="donot_use_mm_for_euclid_dist")
        ref[torch.arange(256, device="cuda"), rows] = float("inf")
        ref_k = torch.topk(ref, args.k, dim=1, largest=False).values[:, -1]
        max_diff = float((ref_k - eps[rows]).abs().max())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32

    gemm_flop = 2.0 * args.n**2 * (args.d + 1)
    achieved = gemm_flop / t_knn / 1e12
    lines = [
        "",
        "## GPU: exact k-NN entropy (benchmarks/bench_knn_gpu.py)",
        "",
        f"Command: `python benchmarks/bench_knn_gpu.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        f"Device: {name}, torch {torch.__version__}, TF32 off",
        "",
        "| N | d | k | fp32 matmul (TFLOP/s) | knn_distances (s) | kl_entropy (s) | distance GEMM "
        "throughput (TFLOP/s) | fraction of matmul | peak GPU memory (GiB) | max abs diff vs float64 "
        "cdist (256 rows) | H (nats) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {args.n} | {args.d} | {args.k} | {peak:.1f} | {t_knn:.2f} | {t_h:.2f} | {achieved:.1f} | "
        f"{achieved / peak:.0%} | {peak_mem:.1f} | {max_diff:.1e} | {h:.3f} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append_to:
        with open(args.append_to, "a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
