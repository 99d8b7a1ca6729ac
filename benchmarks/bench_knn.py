"""Fair benchmark: thermo_nb's exact k-NN estimators against the libraries a user would use.

Entropy (Kozachenko-Leonenko, Euclidean, k = 5) of standard-normal samples, the call a user
makes with default settings on each side, all in this one process:

* ``thermo_nb``: ``kl_entropy(x, k=5)`` (default ``backend="auto"``), and, labelled,
  ``kl_entropy(x, k=5, backend="faiss")``;
* ``cKDTree``: ``scipy.spatial.cKDTree(x).query(x, k + 1, workers=T)``;
* ``sklearn brute`` / ``sklearn auto``: ``NearestNeighbors(n_neighbors=k + 1,
  algorithm="brute" | "auto", n_jobs=T).fit(x).kneighbors(x)`` ("= brute" when ``auto``
  itself chose brute force: the same code, not timed twice);
* ``faiss FlatL2 (float32)``: ``faiss.IndexFlatL2`` on a float32 copy, ``search(x, k + 1)``:
  float32-approximate distances (its error is reported, not hidden).

Each peer then applies the same NPEET constant psi(N) - psi(k) + log V_d in float64.

Protocol: every tool is warmed up (one call on the first 2000 rows); then R >= 5 rounds, the
tools in rotating order (round r starts with tool r mod T); minimum and median per tool;
ratio = peer time / thermo_nb time, from the minima.  A tree (cKDTree, or scikit-learn's
auto when it chose a tree), when its single call is
estimated (from a pilot on the first ``--pilot`` query rows) above ``--budget`` seconds, is
not run in full: its time is the pilot's minimum of 3, scaled by N / pilot and marked
``~`` (tree queries are independent; the brute forces are always run in full).  T threads
for everyone: ``torch.set_num_threads``, ``faiss.omp_set_num_threads``, ``workers=`` /
``n_jobs=`` and threadpoolctl's BLAS/OpenMP limits.

A second table compares ``ksg_mutual_info`` (k = 5) with a cKDTree KSG (max-norm joint
query + ``query_ball_point`` marginal counts) and ``ennemi.estimate_mi`` (one-dimensional
variables).

``--quick`` (CI): N = 12000, d in {2, 10, 50} (trees over 2 s extrapolated); it exits with
status 1 unless the ratios point the way the README claims (thermo_nb faster than cKDTree
and both scikit-learn configurations at d >= 10, not more than 1.5x slower than cKDTree at
d = 2).

Usage::

    .venv/bin/python benchmarks/bench_knn.py                  # full grid -> results_knn.md
    .venv/bin/python benchmarks/bench_knn.py --quick          # seconds; direction check
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
K_DEFAULT = 5
#: above this N the "thermo_nb (faiss backend)" column is not timed (it cannot be
#: extrapolated from a pilot, and its time is FAISS's plus the re-rank: minutes at 100k)
FAISS_BACKEND_MAX_N = 50_000


# ----------------------------------------------------------------------------- formulas


def kl_from_distances(eps: np.ndarray, n: int, d: int, k: int) -> float:
    """NPEET constant: psi(N) - psi(k) + log V_d + d <log eps> (Euclidean ball)."""
    from scipy.special import digamma, gammaln

    log_volume = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)
    eps = np.asarray(eps, dtype=np.float64)
    return float(digamma(n) - digamma(k) + log_volume + d * np.mean(np.log(eps)))


# ----------------------------------------------------------------------------- tools


def entropy_tools(k: int, threads: int, with_faiss: bool):
    """name -> f(x, queries) returning (H or None, k-th distances of the query rows)."""
    from scipy.spatial import cKDTree
    from sklearn.neighbors import NearestNeighbors

    import thermo_nb

    def ours(x, q):
        assert q == len(x)
        return thermo_nb.kl_entropy(x, k=k), None

    def ours_faiss(x, q):
        assert q == len(x)
        return thermo_nb.kl_entropy(x, k=k, backend="faiss"), None

    def ckdtree(x, q):
        eps = cKDTree(x).query(x[:q], k=k + 1, workers=threads)[0][:, k]
        return (
            kl_from_distances(eps, len(x), x.shape[1], k) if q == len(x) else None
        ), eps

    def sklearn(algorithm):
        def run(x, q):
            nn = NearestNeighbors(
                n_neighbors=k + 1, algorithm=algorithm, n_jobs=threads
            )
            eps = nn.fit(x).kneighbors(x[:q])[0][:, k]
            h = kl_from_distances(eps, len(x), x.shape[1], k) if q == len(x) else None
            return h, eps

        return run

    tools = {
        "thermo_nb": ours,
        "cKDTree": ckdtree,
        "sklearn brute": sklearn("brute"),
        "sklearn auto": sklearn("auto"),
    }
    if with_faiss:
        import faiss

        def faiss_flat(x, q):
            xf = np.ascontiguousarray(x, dtype=np.float32)
            index = faiss.IndexFlatL2(xf.shape[1])
            index.add(xf)
            eps = np.sqrt(np.maximum(index.search(xf[:q], k + 1)[0][:, k], 0.0))
            h = kl_from_distances(eps, len(x), x.shape[1], k) if q == len(x) else None
            return h, eps

        tools["thermo_nb (faiss backend)"] = ours_faiss
        tools["faiss FlatL2 (float32)"] = faiss_flat
    return tools


def sklearn_auto_method(x, k: int) -> str:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k + 1).fit(x)._fit_method


# ----------------------------------------------------------------------------- timing


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def time_rotating(tools: dict, x, rounds: int, budget: float, pilot: int):
    """{name: dict(times, value, extrapolated)} under the rotating-order protocol."""
    n = len(x)
    results = {}
    runnable = []
    for name, fn in tools.items():  # warm-up, then a pilot for the slow ones
        fn(x[: min(n, 2000)], min(n, 2000))
        # only the trees may be extrapolated (cKDTree, and sklearn auto, which is timed
        # only when it chose a tree): their queries are independent tree searches; the
        # brute forces are not linear in a pilot's queries (a 1000-query pilot
        # overestimated FAISS's 60k-row time 2.7x and scikit-learn's 100k-row time 1.8x)
        if n > pilot and name in ("cKDTree", "sklearn auto"):
            t_pilot = min(_timed(fn, x, pilot)[0] for _ in range(3))
            if t_pilot * n / pilot > budget:
                eps = fn(x, pilot)[1]
                results[name] = dict(
                    times=[t_pilot * n / pilot], value=None, eps=eps, extrapolated=True
                )
                continue
        runnable.append(name)
    for name in runnable:
        results[name] = dict(times=[], value=None, eps=None, extrapolated=False)
    for r in range(rounds):
        order = runnable[r % len(runnable) :] + runnable[: r % len(runnable)]
        for name in order:
            t, (h, _) = _timed(tools[name], x, n)
            results[name]["times"].append(t)
            results[name]["value"] = h
    return results


@contextlib.contextmanager
def machine_lock(path):
    """Hold an exclusive flock on ``path`` (other timing jobs wait), if given."""
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fmt_t(res) -> str:
    if res["extrapolated"]:
        return f"~{res['times'][0]:.3g}"
    ts = res["times"]
    return f"{min(ts):.3g} / {statistics.median(ts):.3g}"


def ratio(res, ours) -> str:
    r = min(res["times"]) / min(ours["times"])
    return ("~" if res["extrapolated"] else "") + f"{r:.2f}x"


# ----------------------------------------------------------------------------- tables


def entropy_grid(ns, ds, k, threads, rounds, budget, pilot, seed, lock, with_faiss):
    tools = entropy_tools(k, threads, with_faiss)
    names = list(tools)
    rows, cells = [], []
    for n in ns:
        for d in ds:
            x = np.random.default_rng(seed).standard_normal((n, d))
            cell_tools = dict(tools)
            if n > FAISS_BACKEND_MAX_N:  # FAISS's time plus the re-rank: see the notes
                cell_tools.pop("thermo_nb (faiss backend)", None)
            auto_is_brute = sklearn_auto_method(x, k) == "brute"
            if auto_is_brute:
                cell_tools.pop("sklearn auto")
            with machine_lock(lock):
                res = time_rotating(cell_tools, x, rounds, budget, pilot)
            if auto_is_brute:
                res["sklearn auto"] = dict(res["sklearn brute"], same_as="brute")
            ours = res["thermo_nb"]
            from scipy.spatial import cKDTree

            ref_h = ours["value"]
            q = min(n, pilot)
            ref_eps = cKDTree(x).query(x[:q], k=k + 1)[0][:, k]
            diffs = {}
            for name in names[1:]:
                r = res.get(name, {})
                if r.get("value") is not None:
                    diffs[name] = f"{abs(r['value'] - ref_h):.1e}"
                elif r.get("eps") is not None:
                    rel = np.max(np.abs(r["eps"][:q] / ref_eps - 1.0))
                    diffs[name] = f"{rel:.1e} (rel. dist)"
            exact_peers = [
                res[m] for m in ("cKDTree", "sklearn brute", "sklearn auto") if m in res
            ]
            best_exact = min(min(r["times"]) for r in exact_peers)
            cell = dict(n=n, d=d, res=res, best_exact=best_exact, H=ref_h)
            cells.append(cell)
            line = [f"{n}", f"{d}", fmt_t(ours)]
            for name in names[1:]:
                r = res.get(name)
                if r is None:
                    line.append("not run")
                elif r.get("same_as"):
                    line.append("= brute")
                else:
                    line.append(f"{fmt_t(r)} ({ratio(r, ours)})")
            line.append(f"{best_exact / min(ours['times']):.2f}x")
            line.append("; ".join(f"{nm}: {df}" for nm, df in diffs.items()))
            line.append(f"{ref_h:.4f}")
            rows.append("| " + " | ".join(line) + " |")
            print(rows[-1], flush=True)
    header = (
        "| N | d | thermo_nb: min / median (s) | "
        + " | ".join(f"{nm}: min / median (s) (ratio)" for nm in names[1:])
        + " | best exact peer / thermo_nb | |H - H_thermo_nb| (nats) | H (nats) |"
    )
    sep = "|" + "---|" * (len(names) + 5)
    return [header, sep] + rows, cells


def ksg_tools(k: int, threads: int):
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    import thermo_nb

    def ours(x, y):
        return thermo_nb.ksg_mutual_info(x, y, k=k)

    def ckdtree_ksg(x, y):
        z = np.hstack([x, y])
        n = len(z)
        eps = cKDTree(z).query(z, k=k + 1, p=np.inf, workers=threads)[0][:, k]
        r = np.nextafter(eps, 0.0)  # strictly closer than eps
        nx = cKDTree(x).query_ball_point(
            x, r, p=np.inf, return_length=True, workers=threads
        )
        ny = cKDTree(y).query_ball_point(
            y, r, p=np.inf, return_length=True, workers=threads
        )
        return float(digamma(k) + digamma(n) - np.mean(digamma(nx) + digamma(ny)))

    tools = {"thermo_nb": ours, "cKDTree KSG": ckdtree_ksg}
    try:
        import ennemi

        def ennemi_mi(x, y):
            if x.shape[1] != 1 or y.shape[1] != 1:
                raise NotImplementedError
            mi = ennemi.estimate_mi(
                y[:, 0], x[:, 0], k=k, preprocess=False, max_threads=threads
            )
            return float(np.asarray(mi).reshape(-1)[0])

        tools["ennemi"] = ennemi_mi
    except ImportError:
        pass
    return tools


def ksg_grid(ns, dims, k, threads, rounds, seed, lock):
    tools = ksg_tools(k, threads)
    rows = []
    for n in ns:
        for dx in dims:
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((n, dx))
            y = 0.6 * x + 0.8 * rng.standard_normal((n, dx))
            names = list(tools)
            if dx > 1:
                names = [m for m in names if m != "ennemi"]
            times = {m: [] for m in names}
            values = {}
            with machine_lock(lock):
                for m in names:
                    tools[m](x[:1000], y[:1000])  # warm-up
                for r in range(rounds):
                    for m in names[r % len(names) :] + names[: r % len(names)]:
                        t, values[m] = _timed(tools[m], x, y)
                        times[m].append(t)
            ours = min(times["thermo_nb"])
            cells = [f"{n}", f"{dx}+{dx}"]
            for m in tools:
                if m not in names:
                    cells.append("n/a (1-D variables only)")
                    continue
                ts = times[m]
                cells.append(
                    f"{min(ts):.3g} / {statistics.median(ts):.3g}"
                    + ("" if m == "thermo_nb" else f" ({min(ts) / ours:.2f}x)")
                )
            diff = max(abs(values[m] - values["thermo_nb"]) for m in names)
            cells += [f"{diff:.1e}", f"{values['thermo_nb']:.4f}"]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    header = (
        "| N | dims | "
        + " | ".join(f"{m}: min / median (s) (ratio)" for m in tools)
        + " | max abs diff (nats) | I (nats) |"
    )
    return [header, "|" + "---|" * (len(tools) + 4)] + rows


# ----------------------------------------------------------------------------- memory


def memory_check_child(n, d, k):
    """In a fresh process: peak RSS of kl_entropy on (n, d) standard-normal data."""
    import thermo_nb

    x = np.random.default_rng(0).standard_normal((n, d))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t, h = _timed(thermo_nb.kl_entropy, x, k)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"MEMORY n={n} d={d} seconds={t:.1f} peak_rss_mib={peak:.0f} "
        f"rss_before_mib={base:.0f} data_mib={x.nbytes / 2**20:.0f} H={h:.4f}"
    )


def memory_check(n, d, k):
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n), str(d), "--k", str(k)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "THERMO_NB_PROGRESS": "0"},
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("MEMORY")][-1]
    return dict(kv.split("=") for kv in line.split()[1:])


# ----------------------------------------------------------------------------- main


def machine_line(threads: int) -> str:
    import scipy
    import sklearn
    import torch

    versions = (
        f"python {platform.python_version()}, torch {torch.__version__}, scipy "
        f"{scipy.__version__}, scikit-learn {sklearn.__version__}"
    )
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("faiss-cpu", "ennemi"):
        try:
            versions += f", {dist} {version(dist)}"
        except PackageNotFoundError:
            versions += f", {dist} not installed"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")
            )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {threads} threads for every tool, load "
        f"average at start {load}; {versions}"
    )


def check_directions(cells) -> list[str]:
    """The README's claims, as directions: failures as strings."""
    bad = []
    for c in cells:
        ours = min(c["res"]["thermo_nb"]["times"])
        if c["d"] >= 10 and c["best_exact"] <= ours:
            bad.append(
                f"N={c['n']} d={c['d']}: thermo_nb {ours:.3g} s not faster than the "
                f"best exact peer {c['best_exact']:.3g} s"
            )
        ckd = min(c["res"]["cKDTree"]["times"])
        if c["d"] <= 3 and ours > 1.5 * ckd:
            bad.append(
                f"N={c['n']} d={c['d']}: thermo_nb {ours:.3g} s more than 1.5x "
                f"cKDTree's {ckd:.3g} s"
            )
    return bad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds; direction check")
    parser.add_argument("--k", type=int, default=K_DEFAULT)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (>= 5)")
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--pilot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ns", default=None, help="comma-separated N (overrides)")
    parser.add_argument("--ds", default=None, help="comma-separated d (overrides)")
    parser.add_argument("--no-ksg", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--lock", default=None, help="flock file held per cell")
    parser.add_argument("--output", default=None, help="markdown file to write")
    parser.add_argument(
        "--memory-child", nargs=2, type=int, metavar=("N", "D"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_check_child(*args.memory_child, args.k)
        return 0
    if args.rounds < 5:
        parser.error("--rounds must be >= 5 (minimum and median of at least 5 runs)")
    os.environ.setdefault("THERMO_NB_PROGRESS", "0")
    memory_lines = []
    if not args.no_memory and not args.quick:
        mem = memory_check(200_000, 100, args.k)  # first: a child inherits our RSS
        memory_lines = [
            "",
            "## Memory",
            "",
            f"`kl_entropy` on N = {mem['n']}, d = {mem['d']} (float64 data "
            f"{mem['data_mib']} MiB) in a fresh process: peak RSS {mem['peak_rss_mib']} MiB "
            f"({mem['rss_before_mib']} MiB before the call), {mem['seconds']} s.",
        ]
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        with_faiss = True
    except ImportError:
        with_faiss = False
    threadpool_limits(args.threads)
    ns = [12_000] if args.quick else [2_000, 20_000, 100_000]
    if args.quick:
        args.budget = min(args.budget, 2.0)
    ds = [2, 10, 50] if args.quick else [2, 3, 10, 50, 500]
    if args.ns:
        ns = [int(v) for v in args.ns.split(",")]
    if args.ds:
        ds = [int(v) for v in args.ds.split(",")]
    command = "python " + " ".join(
        [os.path.relpath(__file__, HERE.parent)]
        + (argv if argv is not None else sys.argv[1:])
    )
    lines = [
        "# k-NN benchmark: thermo_nb against cKDTree, scikit-learn, FAISS and ennemi",
        "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  ",
        f"Machine: {machine_line(args.threads)}",
        "",
        f"## Entropy: `kl_entropy(x, k={args.k})`",
        "",
        "Standard-normal data. Times in seconds, min / median of "
        f"{args.rounds} rounds in rotating order after a warm-up; (ratio) = peer min / "
        "thermo_nb min: above 1 means thermo_nb is faster. `~` = a tree extrapolated from "
        f"the first {args.pilot} query rows (single call estimated > {args.budget:.0f} s). "
        "'= brute': scikit-learn's auto chose brute force. The faiss columns are float32: "
        "'thermo_nb (faiss backend)' uses FAISS for the candidates and is exact; 'faiss "
        "FlatL2 (float32)' is FAISS alone, approximate (see the error column: entropy "
        "difference, or relative k-th distance error on the pilot rows when extrapolated).",
        "",
    ]
    table, cells = entropy_grid(
        ns,
        ds,
        args.k,
        args.threads,
        args.rounds,
        args.budget,
        args.pilot,
        args.seed,
        args.lock,
        with_faiss,
    )
    lines += table
    if not args.no_ksg:
        lines += [
            "",
            f"## Mutual information: `ksg_mutual_info(x, y, k={args.k})`",
            "",
            "y = 0.6 x + 0.8 noise per coordinate. cKDTree KSG: max-norm joint query, "
            "then `query_ball_point(return_length=True)` in each marginal. ennemi takes "
            "one-dimensional variables only.",
            "",
        ]
        ksg_ns = [4000] if args.quick else [2_000, 20_000]
        lines += ksg_grid(
            ksg_ns, [1, 10], args.k, args.threads, args.rounds, args.seed, args.lock
        )
    lines += memory_lines
    bad = check_directions(cells)
    lines += ["", "## Direction check", ""]
    lines += [f"- FAILED: {b}" for b in bad] or [
        "- every cell points the way the README says (d >= 10: faster than every exact "
        "peer; d <= 3: within 1.5x of cKDTree)"
    ]
    text = "\n".join(lines) + "\n"
    print("\n".join(lines[-2:]))
    if args.output or not args.quick:
        out = Path(args.output or HERE / "results_knn.md")
        out.write_text(text)
        print(f"wrote {out}")
    return 1 if (bad and args.quick) else 0


if __name__ == "__main__":
    sys.exit(main())
