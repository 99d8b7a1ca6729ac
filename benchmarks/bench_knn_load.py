"""k-NN timing under load: thermo_nb vs scikit-learn brute force, quiet and with one
busy-looping competitor process on one core (N = 20k, d = 10, k = 5, 2 threads each,
7 rounds in rotating order; min / median / max seconds).

Usage::

    .venv/bin/python benchmarks/bench_knn_load.py
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time

import numpy as np


def burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10000))


def main() -> None:
    import torch
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    import thermo_nb

    torch.set_num_threads(2)
    threadpool_limits(2)
    x = np.random.default_rng(0).standard_normal((20000, 10))
    tools = {
        "thermo_nb": lambda: thermo_nb.kl_entropy(x, k=5),
        "sklearn brute": lambda: (
            NearestNeighbors(n_neighbors=6, algorithm="brute", n_jobs=2)
            .fit(x)
            .kneighbors(x)
        ),
    }
    for label, n_busy in (("quiet", 0), ("1 busy process", 1)):
        stop = mp.Event()
        procs = [mp.Process(target=burn, args=(stop,)) for _ in range(n_busy)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        times = {name: [] for name in tools}
        for fn in tools.values():
            fn()
        names = list(tools)
        for r in range(7):
            for name in names[r % 2 :] + names[: r % 2]:
                t0 = time.perf_counter()
                tools[name]()
                times[name].append(time.perf_counter() - t0)
        stop.set()
        for p in procs:
            p.join()
        summary = {
            k: f"{min(v):.3f} / {statistics.median(v):.3f} / {max(v):.3f}"
            for k, v in times.items()
        }
        print(label, summary, flush=True)


if __name__ == "__main__":
    main()
