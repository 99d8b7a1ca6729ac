r"""Exact k-nearest-neighbour search: the engine under every k-NN estimator of
:mod:`thermo_nb.estimators.knn` (which holds only the formulas).

:func:`knn_distances` returns exact k-th neighbour distances; ``count_strictly_within``
counts neighbours inside a radius (KSG); the input checks shared by the estimators
(``to_tensor``, ``check_k``, ``check_metric``, ``rescale_extreme``) live here too.

How the engine works
--------------------
Four backends (``backend=`` of :func:`knn_distances` and the estimators; every one returns
the same exact float64 distances):

* ``"tree"``: a :class:`scipy.spatial.cKDTree` query (CPU).  ``"auto"`` uses it in low
  dimension on the CPU (``d <= TREE_MAX_DIM[metric]``: 8 Euclidean, 5 max-norm), where it
  measured faster than any brute force.
* ``"brute"``: the certified brute force below, on the CPU or a GPU.  ``"auto"`` uses it
  everywhere else (but see ``FAISS_PREFERRED``).
* ``"faiss"``: the same brute force with FAISS's float32 ``IndexFlatL2`` as step 2 (the
  candidate search); steps 3-4 unchanged, so the answer is still exact (CPU, Euclidean,
  optional ``faiss`` extra).  The fair benchmark (``benchmarks/results_knn.md``) found
  the own candidate step faster than FAISS's in every cell with d >= 10 on the project's
  2-core machine, so ``FAISS_PREFERRED`` is empty and "auto" never picks it.

The certified brute force (Euclidean):

1. centre the data (distances are translation invariant; centring keeps the norms, and
   therefore the rounding error of step 2, as small as the spread of the data);
2. approximate squared distances in float32 with the matmul expansion
   :math:`\|a\|^2 + \|b\|^2 - 2a\cdot b`, block by block, and keep per row a set of
   :math:`m = k + 5` smallest as candidates.  Three block layouts:

   * CPU, ``d < SYMMETRIC_MIN_DIM`` (128), or up to ``CPU_BLAS_ROWS_HIGH_DIM_LIMIT``
     (d <= 500 with N <= 30k): *row blocks on worker threads*
     (:func:`_candidates_blas_rows`).  One thread per torch thread, each with
     single-threaded BLAS and torch, takes a block of rows and computes
     :math:`[a, 1]\cdot[-2b, \|b\|^2]^T` with numpy's OpenBLAS ``sgemm`` into a
     buffer of its own, then selects.  torch's CPU GEMM ran these thin shapes 3-10x
     slower than OpenBLAS, and one thread per block avoids the OpenMP barrier between
     the GEMM and the selection (and the spinning threads that made the old all-threads
     version erratic under load);
   * GPU, ``d < SYMMETRIC_MIN_DIM``: chunks of full rows, one torch GEMM of the augmented
     matrices (the row constant :math:`\|a\|^2` is added afterwards);
   * otherwise (``d >= SYMMETRIC_MIN_DIM``): square T x T tiles on and above the diagonal
     only (half the GEMM flops), each computed as ``addmm(|b|^2, a, b^T, alpha=-2) +
     |a|^2`` (no augmented copies of the data) so that a tile serves its rows and, read
     column-wise, its columns; each row keeps a running candidate set (the m smallest of
     the old set and the tile's, which keeps "every non-candidate is >= the largest
     candidate" true).

   Above ``d = 2092`` the worst-case float32 bound of step 4, ``(2d + 10) u``, exceeds
   ``FLOAT32_MAX_RELATIVE_BOUND`` (2.5e-4) and would fail most rows, so the candidate GEMM
   runs in float64 there (:math:`u = 2^{-53}`).

   The selection in a block is exact and cheaper than ``torch.topk`` over whole rows: the
   minimum of each group of 16 (strided) columns, the m groups of smallest minimum, then
   the m smallest of their entries (an unselected group's entries are >= its minimum >=
   every selected minimum >= the m-th selected value);
3. recompute the candidates' distances exactly in float64 from coordinate differences;
4. *certify* each row: every non-candidate has approximate squared distance at least the
   m-th candidate's, so its true squared distance is at least that minus a worst-case
   float32 error bound, :math:`(2d + 8)\,u\,(\|a\|^2 + 2\max_b\|b\|^2)` (row chunks) or
   :math:`(2d + 10)\,u\,(2\|a\|^2 + 2\max_b\|b\|^2)` (tiles), :math:`u = 2^{-24}` (both
   about twice the worst-case rounding error; :math:`u = 2^{-53}` for float64 candidates).
   When that lower bound is not below the
   k-th exact candidate distance, the result is exact.  Rows that fail (rare: heavy ties
   or extreme concentration of distances) are recomputed with a full float64 brute force.

The results therefore equal a float64 k-d tree query (e.g. scipy's ``cKDTree``) to rounding
(~1e-12 relative).  Memory is bounded by the chunk: about ``4 * N * chunk_size`` bytes
(row chunks; ``chunk_size`` at most ``CPU_ROW_CHUNK`` = 256 rows on the CPU by default) or
``4 * T**2`` (tiles, T = ``CPU_SYMMETRIC_TILE`` = 4096 on the CPU; twice that in float64)
on top of the data, one centred copy of it and O(N k) candidate arrays (N = 200 000,
d = 100 peaks at 733 MiB; N = 1000, d = 200 000 at 2.1 GiB above its 1.5 GiB of data).  The max-norm
(Chebyshev) metric uses ``torch.cdist(p=inf)`` in float64 (exact, no candidate step).

TF32 is switched off inside the computation on CUDA so that the float32 error bound holds.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

METRICS = ("euclidean", "chebyshev")

#: Largest dimension for which the CPU path uses scipy's cKDTree, per metric.  Measured on a
#: shared 2-core AMD EPYC (Gaussian data, k=3), tree vs the cache-blocked brute force:
#: d=10: 0.75 vs 0.21 s (N=20k), 8.1 vs 4.3 s (N=100k); d=9: 0.50 vs 0.23 s (N=20k), 4.6 vs
#: 4.2 s (N=100k); d=8: 2.4 vs 4.0 s (N=100k).
#: The max-norm brute force has no matmul shortcut; its threshold (5) is a coarse choice.
TREE_MAX_DIM = {"euclidean": 8, "chebyshev": 5}

#: CPU candidate step below ``SYMMETRIC_MIN_DIM``: "blas-threads" (numpy's OpenBLAS sgemm
#: and the selection on one worker thread per core, each single-threaded, see
#: :func:`_candidates_blas_rows`) or "torch" (torch's GEMM and OpenMP-parallel selection).
#: Measured (2-core EPYC, N = 20k, k = 5, min of 5): d = 10: 0.23 vs 0.43 s; d = 50: 0.48
#: vs 0.74 s.  (torch's CPU sgemm ran (128 x 11) @ (11 x 20000) at 3.7 GFLOP/s, OpenBLAS
#: at 43.)
CPU_GEMM_BACKEND = "blas-threads"
#: Rows per block of the "blas-threads" candidate step (per worker).  d <= 31: a block of
#: about CPU_BLAS_BLOCK_BYTES, 64 to 256 rows; above: CPU_BLAS_ROWS.  Measured (k = 5,
#: min of 5-9): d = 10, N = 20k: 64 rows 0.31 s, 128 rows 0.35 s, 256 rows 0.36 s; N = 4000:
#: 64 rows 26 ms, 128 rows 24 ms, 512 rows 33 ms; N = 2000: 64 rows 15 ms, 256 rows 10 ms;
#: d = 50, N = 20k: 128 rows 0.60 s, 256 rows 0.56 s, 512 rows 0.48 s.
CPU_BLAS_BLOCK_BYTES = 2 * 2**20
CPU_BLAS_ROWS_LOW_DIM = 64
CPU_BLAS_ROWS = 512
CPU_MAX_WORKERS = 64
#: From ``SYMMETRIC_MIN_DIM`` up to this (d, N) the "blas-threads" row blocks are used
#: instead of torch's symmetric tiles: N = 20k: d = 128: 0.91 vs 1.19 s, d = 200: 1.23 vs
#: 1.61 s, d = 500: 2.68 vs 2.88 s; N = 5000, d = 500: 0.23 vs 0.28 s.  Above N = 30k the
#: halved GEMM of the tiles is kept (not measured against the row blocks there).
CPU_BLAS_ROWS_HIGH_DIM_LIMIT = (500, 30_000)

#: Backends of :func:`knn_distances`: "auto" chooses (see :func:`choose_backend`); "tree"
#: is scipy's cKDTree (CPU); "brute" the certified brute force of this module (CPU or
#: GPU); "faiss" the same brute force with FAISS's float32 ``IndexFlatL2`` as candidate
#: search (CPU, Euclidean, needs the ``faiss`` extra: ``pip install "thermo-nb[faiss]"``).
BACKENDS = ("auto", "tree", "brute", "faiss")

#: Where "auto" picks FAISS for the candidate search (CPU, Euclidean): boxes
#: ``(d_min, d_max, n_min, n_max)``, inclusive.  Empty: in the fair benchmark
#: (``benchmarks/bench_knn.py``, ``benchmarks/results_knn.md``) the "brute" backend was
#: at least as fast as FAISS + re-rank in every measured cell with d >= 10, so "auto"
#: uses FAISS nowhere on this kind of machine; ``backend="faiss"`` forces it.
FAISS_PREFERRED: tuple = ()

#: Working-memory budget of one chunk of the brute force, in bytes.
CPU_CHUNK_BYTES = 256 * 2**20
CUDA_CHUNK_BYTES = 2 * 2**30

#: Euclidean brute force: from this dimension on, only the blocks on and above the diagonal
#: of the N x N distance matrix are computed (half the GEMM), each used for its rows and,
#: transposed, for its columns; below it, full rows of CPU_ROW_CHUNK rows (the per-block
#: selection overhead of the symmetric scheme outweighs the GEMM saved at small d).
SYMMETRIC_MIN_DIM = 128
CPU_ROW_CHUNK = 256

#: Below this dimension the float32 GEMM is bound by writing its (rows x N) output, not by
#: arithmetic, so the CPU row block is sized to stay in cache (CPU_CACHE_BLOCK_BYTES, at
#: least 16 rows) instead of CPU_ROW_CHUNK rows.  Measured (2-core EPYC, 32 MiB L3, k = 3,
#: min of 3): d = 10, N = 100k: 32 rows 4.16 s vs 256 rows 8.03 s; N = 20k: 64-128 rows
#: 0.24-0.25 s vs 0.39 s; d = 20, N = 100k: 5.96 vs 7.24 s; d = 50, N = 100k: 64 rows 15.0 s
#: vs 256 rows 11.2 s (there the larger block wins).
CACHE_BLOCKED_MAX_DIM = 31
CPU_CACHE_BLOCK_BYTES = 12 * 2**20
CPU_SYMMETRIC_TILE = 4096
_SELECT_GROUP = 16

_FLOAT32_UNIT_ROUNDOFF = 2.0**-24
_FLOAT64_UNIT_ROUNDOFF = 2.0**-53

#: Largest worst-case relative error bound, (2d + 10) u, for which the candidate GEMM runs in
#: float32 (d <= 2092); above it the candidates come from a float64 GEMM.  At N = 1000,
#: d = 200k the float32 bound (2.4%) exceeded every row's gap between the k-th and the m-th
#: neighbour (all rows fell back to the exact float64 path: 113 s).
FLOAT32_MAX_RELATIVE_BOUND = 2.5e-4
_JITTER_RELATIVE = 1e-10


# ----------------------------------------------------------------------------- validation


def as_sample_tensor(x, name: str, device=None, min_rows: int = 2):
    """Return a float64 (N, d) torch tensor on the resolved device, after validation.

    1-D input is read as N scalar samples, shape (N, 1).
    """
    import torch

    from ..runtime import resolve_device

    checked = False
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if device is not None:
            t = t.to(resolve_device(device))
    else:
        if np.iscomplexobj(x):
            raise ValueError(
                f"{name} must be real-valued, got complex input (dtype "
                f"{np.asarray(x).dtype}); pass the real and imaginary parts as columns"
            )
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be a numeric array of shape (N, d), got {type(x).__name__}"
            ) from None
        # check in numpy: a torch parallel op here would leave OpenMP threads spinning that
        # compete with the k-d tree's worker threads on small inputs
        if arr.ndim in (1, 2) and arr.size and not np.isfinite(arr).all():
            n_bad = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum())
            raise ValueError(
                f"{name} contains NaN or infinite values ({n_bad} rows); remove them first"
            )
        t = torch.from_numpy(np.ascontiguousarray(arr)).to(
            resolve_device(device or "cpu")
        )
        checked = True
    if t.ndim == 1:
        t = t.reshape(-1, 1)
    if t.ndim != 2:
        raise ValueError(
            f"{name} must have shape (N, d) (or (N,) for scalar samples), "
            f"got shape {tuple(t.shape)}"
        )
    if t.shape[0] < min_rows or t.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least {min_rows} samples (rows) and 1 dimension, got shape "
            f"{tuple(t.shape)}"
        )
    if t.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    t = t.to(torch.float64)
    if not checked and not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(
            f"{name} contains NaN or infinite values ({n_bad} rows); remove them first"
        )
    return t.contiguous()


#: spreads outside [2^-_SAFE_EXPONENT, 2^_SAFE_EXPONENT] are rescaled before the search
_SAFE_EXPONENT = 100


def rescale_extreme(*tensors):
    r"""Bring data of extreme scale back to unit size by one power of two (exact).

    Squared distances of data spread over 1e155 overflow and over 1e-160 underflow
    (every point then looks like a duplicate). Entropy is shift- and scale-covariant,
    :math:`H(aX + b) = H(X) + d \ln a`, and k-NN mutual information is invariant under a
    common scale, so such data are centred and multiplied by :math:`2^{-e}` (the same
    factor for every tensor). Data of ordinary scale are returned unchanged (bit for bit).

    Returns
    -------
    (tensors, log_scale)
        The (possibly) rescaled tensors and :math:`\ln a` with :math:`a = 2^{e}`
        (0.0 when nothing was done).
    """
    import math

    spread = max(float((t.amax(0) - t.amin(0)).max()) for t in tensors)
    if spread == 0.0 or 2.0**-_SAFE_EXPONENT <= spread <= 2.0**_SAFE_EXPONENT:
        return tensors, 0.0
    e = math.frexp(spread)[1]  # spread = m 2^e, m in [0.5, 1)
    out = tuple((t - t.amin(0)) * 2.0**-e for t in tensors)
    return out, e * math.log(2.0)


def check_metric(metric) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    return metric


def check_k(
    k, n: int, name: str = "k", lowest: int = 1, allow_equal_n: bool = False
) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lowest}, got {k!r}")
    k = int(k)
    if k < lowest:
        raise ValueError(f"{name} must be an integer >= {lowest}, got {k}")
    if (k > n) if allow_equal_n else (k >= n):
        relation = "<=" if allow_equal_n else "<"
        raise ValueError(
            f"{name} must be {relation} the number of samples N: got {name}={k} with N={n}"
        )
    return k


def faiss_available() -> bool:
    """True when the optional ``faiss`` package (``faiss-cpu``) can be imported."""
    try:
        import_faiss()
    except ImportError:
        return False
    return True


def import_faiss():
    """Import FAISS or raise an ImportError that says how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            'backend="faiss" needs the optional faiss package: '
            'pip install "thermo-nb[faiss]" (or pip install faiss-cpu)'
        ) from err
    return faiss


def check_backend(backend, metric: str, device) -> str:
    """Validate ``backend`` against the metric and the device (before any compute)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend in ("tree", "faiss") and device.type != "cpu":
        raise ValueError(
            f'backend="{backend}" runs on the CPU only, got device {device}; use '
            'backend="brute" or "auto" on a GPU'
        )
    if backend == "faiss":
        if metric != "euclidean":
            raise ValueError(
                f'backend="faiss" supports metric="euclidean" only, got {metric!r}; '
                'use backend="brute", "tree" or "auto"'
            )
        import_faiss()
    return backend


def choose_backend(n: int, d: int, metric: str, device) -> str:
    """The backend "auto" uses for N samples in d dimensions (see ``TREE_MAX_DIM``,
    ``FAISS_PREFERRED``): "tree", "faiss" or "brute"."""
    if _use_tree(n, d, metric, device):
        return "tree"
    if (
        metric == "euclidean"
        and device.type == "cpu"
        and any(a <= d <= b and lo <= n <= hi for a, b, lo, hi in FAISS_PREFERRED)
        and faiss_available()
    ):
        return "faiss"
    return "brute"


# ----------------------------------------------------------------------------- engine


@contextlib.contextmanager
def _tf32_disabled(device):
    """Disable TF32 matmuls on CUDA for the duration (the error bound assumes true fp32)."""
    import torch

    if device.type != "cuda":
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cuda.matmul.allow_tf32 = old


def _default_chunk_size(n: int, device) -> int:
    budget = CUDA_CHUNK_BYTES if device.type == "cuda" else CPU_CHUNK_BYTES
    # ~ float32 distance block + topk/mask temporaries: budget 12 bytes per entry
    return int(max(1, min(n, budget // (12 * n))))


def _use_tree(n: int, d: int, metric: str, device) -> bool:
    return device.type == "cpu" and d <= TREE_MAX_DIM[metric]


def _tree_query(x, k: int, metric: str):
    import torch
    from scipy.spatial import cKDTree

    pts = x.numpy()
    p = 2.0 if metric == "euclidean" else np.inf
    dist, _ = cKDTree(pts).query(pts, k=k + 1, p=p, workers=-1)
    # column 0 is the point itself (or an exact duplicate: same distance, 0)
    return torch.from_numpy(np.ascontiguousarray(dist[:, 1:]))


def _exact_rows_float64(x, rows, k: int, metric: str, chunk_size: int):
    """Full float64 brute force for the given row indices (the certification fallback)."""
    import torch

    out = torch.empty((rows.numel(), k), dtype=torch.float64, device=x.device)
    p = 2.0 if metric == "euclidean" else float("inf")
    for s in range(0, rows.numel(), chunk_size):
        r = rows[s : s + chunk_size]
        d = torch.cdist(x[r], x, p=p, compute_mode="donot_use_mm_for_euclid_dist")
        d[torch.arange(r.numel(), device=x.device), r] = float("inf")
        out[s : s + chunk_size] = torch.topk(
            d, k, dim=1, largest=False, sorted=True
        ).values
    return out


def _brute_force_chebyshev(x, k: int, chunk_size: int, show_progress: bool):
    import torch

    from ..runtime import progress

    n = x.shape[0]
    # no centring here: max-norm differences are computed exactly from the raw coordinates,
    # so they are bit-identical to the marginal distances the KSG counts compare against
    xc = x
    out = torch.empty((n, k), dtype=torch.float64, device=x.device)
    starts = range(0, n, chunk_size)
    if show_progress:  # (tqdm is imported only for long runs)
        starts = progress(starts, total=len(starts), desc="k-NN (max-norm)")
    for s in starts:
        e = min(n, s + chunk_size)
        d = torch.cdist(xc[s:e], xc, p=float("inf"))
        d[torch.arange(e - s, device=x.device), torch.arange(s, e, device=x.device)] = (
            float("inf")
        )
        out[s:e] = torch.topk(d, k, dim=1, largest=False, sorted=True).values
    return out


def _smallest_per_row(block, m: int, group: int):
    """(values, columns) of m entries per row of ``block`` such that every other entry of the
    row is >= the largest selected one (i.e. a set of m smallest; ties broken arbitrarily).

    Two stages, cheaper than ``torch.topk`` over whole rows: the columns are split into
    ``W = width // group`` strided groups ``{w, w + W, w + 2W, ...}`` (plus a tail of fewer
    than ``group`` columns, always kept); the m groups with the smallest minima are selected
    (a vectorised min over the group axis + a top-k over W minima), and the m smallest of
    their m * group entries (+ the tail) are returned.  Exact: an unselected group's entries
    are >= its minimum >= each selected group's minimum, and the m selected minima are m
    distinct entries, so they are >= the m-th smallest returned value.
    """
    import torch

    r, width = block.shape
    if width <= m:  # (a narrow last tile) all of it
        return block.clone(), torch.arange(width, device=block.device).expand(r, width)
    n_groups = width // group
    if n_groups < 2 * m:
        return torch.topk(block, m, dim=1, largest=False, sorted=False)
    main = n_groups * group
    gmin = block[:, :main].view(r, group, n_groups).amin(dim=1)  # (r, W)
    gidx = torch.topk(gmin, m, dim=1, largest=False, sorted=False).indices
    cols = (
        gidx.unsqueeze(2) + n_groups * torch.arange(group, device=block.device)
    ).reshape(r, m * group)
    if main < width:
        cols = torch.cat(
            [
                cols,
                torch.arange(main, width, device=block.device).expand(r, width - main),
            ],
            dim=1,
        )
    vals, pos = torch.topk(block.gather(1, cols), m, dim=1, largest=False, sorted=False)
    return vals, cols.gather(1, pos)


def _smallest_per_column(block, m: int, group: int):
    """Column-wise :func:`_smallest_per_row` of a contiguous block, without transposing it:
    returns (values, rows), each of shape (width, m)."""
    import torch

    r, width = block.shape
    if r <= m:
        return block.t().contiguous(), torch.arange(r, device=block.device).expand(
            width, r
        )
    n_groups = r // group
    if n_groups < 2 * m:
        vals, rows = torch.topk(
            block.t().contiguous(), m, dim=1, largest=False, sorted=False
        )
        return vals, rows
    main = n_groups * group
    gmin = block[:main].view(group, n_groups, width).amin(dim=0)  # (W, width)
    gidx = torch.topk(
        gmin.t().contiguous(), m, dim=1, largest=False, sorted=False
    ).indices
    rows = (
        gidx.unsqueeze(2) + n_groups * torch.arange(group, device=block.device)
    ).reshape(width, m * group)
    if main < r:
        rows = torch.cat(
            [rows, torch.arange(main, r, device=block.device).expand(width, r - main)],
            dim=1,
        )
    flat = rows * width + torch.arange(width, device=block.device).unsqueeze(1)
    vals, pos = torch.topk(
        block.reshape(-1).take(flat), m, dim=1, largest=False, sorted=False
    )
    return vals, rows.gather(1, pos)


def _merge_candidates(val, idx, new_val, new_idx):
    """m smallest of the union of two candidate sets of m per row (in place)."""
    import torch

    m = val.shape[1]
    v, pos = torch.topk(
        torch.cat([val, new_val], dim=1), m, dim=1, largest=False, sorted=False
    )
    idx.copy_(torch.cat([idx, new_idx], dim=1).gather(1, pos))
    val.copy_(v)


def _default_euclidean_tile(device) -> int:
    """Square tile of the symmetric brute force: a float32 T x T block within the budget."""
    budget = CUDA_CHUNK_BYTES if device.type == "cuda" else CPU_CHUNK_BYTES
    return max(
        1,
        min(
            CPU_SYMMETRIC_TILE if device.type == "cpu" else 1 << 30,
            math.isqrt(budget // 16),
        ),
    )


def _cpu_rows_per_block(n: int, dim: int, workers: int) -> int:
    """Rows per block of the CPU row-block brute force (see ``CPU_BLAS_ROWS``)."""
    if dim <= CACHE_BLOCKED_MAX_DIM:  # GEMM output-bound: a cache-sized block
        rows = max(CPU_BLAS_ROWS_LOW_DIM, min(256, CPU_BLAS_BLOCK_BYTES // (4 * n)))
    else:
        rows = CPU_BLAS_ROWS
    budget_rows = CPU_CHUNK_BYTES // max(1, workers) // (4 * n)
    return int(max(8, min(rows, budget_rows, n)))


def _prepare_euclidean(x):
    """Centred data scaled to max |coordinate| = 1, its float64 squared norms and scale."""
    import torch

    n = x.shape[0]
    xc = x - x.mean(dim=0)  # float64, centred
    # rescale to max |coordinate| = 1 so float32 neither overflows nor underflows; all
    # squared quantities of the candidate step are in these scaled units
    scale = max(float(xc.max()), -float(xc.min()))  # (no |xc| temporary)
    scale = scale if scale > 0.0 else 1.0
    xc.div_(scale)
    sq64 = torch.bmm(xc.unsqueeze(1), xc.unsqueeze(2)).view(n)  # (no N x d temporary)
    return xc, sq64, scale


def _row_block_bound(dim: int, unit: float, sq64):
    """Worst-case error of |b|^2 - 2 a.b + |a|^2 from the augmented row-block GEMM."""
    # rounding of the inputs and of the d+1 products and sums, relative to |a|^2 + 2|b|^2
    return (2 * dim + 8) * unit * (sq64 + 2.0 * float(sq64.max()))


def _tile_bound(dim: int, unit: float, sq64):
    """Worst-case error of |a|^2 + |b|^2 - 2 a.b computed from separately rounded norms."""
    # inputs rounded to the GEMM precision, a d-term dot product, |a|^2 and |b|^2 rounded
    # once, two additions, relative to |a|^2 + |b|^2 + 2|a||b| <= 2|a|^2 + 2|b|^2: about
    # (2d + 7) u (|a|^2 + |b|^2); a factor >= 2 safety margin on top
    return (2 * dim + 10) * unit * 2.0 * (sq64 + float(sq64.max()))


_POOLS: dict = {}
_CONTROLLER: list = []


def _worker_pool(workers: int):
    """A persistent thread pool of ``workers`` threads (created once per size)."""
    from concurrent.futures import ThreadPoolExecutor

    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(
            workers, thread_name_prefix="thermo-nb-knn"
        )
    return _POOLS[workers]


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (found once: slow)."""
    from threadpoolctl import ThreadpoolController

    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _use_blas_rows(n: int, dim: int) -> bool:
    """Whether the CPU candidate step uses :func:`_candidates_blas_rows`."""
    if CPU_GEMM_BACKEND != "blas-threads":
        return False
    if dim < SYMMETRIC_MIN_DIM:
        return True
    max_dim, max_n = CPU_BLAS_ROWS_HIGH_DIM_LIMIT
    return dim <= max_dim and n <= max_n


def _candidates_blas_rows(xc, sq64, m: int, show_progress: bool):
    r"""CPU candidate search: float32 OpenBLAS GEMM by row blocks on a pool of threads.

    Each worker thread takes a block of rows, computes its approximate squared distances
    to all points with numpy's (OpenBLAS) ``sgemm`` of the augmented matrices
    :math:`[a, 1]` and :math:`[-2b, \|b\|^2]` into a buffer it reuses, and keeps a set of
    m smallest per row (:func:`_smallest_per_row`).  BLAS and torch run single-threaded
    inside the workers, and there are ``torch.get_num_threads()`` workers: one thread per
    core, each on its own block, no OpenMP barrier between the GEMM and the selection
    (OpenBLAS measured 3-10x faster than torch's CPU GEMM for these thin shapes, e.g.
    (128 x 11) @ (11 x 20000): 43 vs 3.7 GFLOP/s on the project's 2-core EPYC).

    Returns (candidate columns (N, m) int64, cutoff (N,) float64, bound (N,) float64), the
    last two in the scaled squared units of :func:`_prepare_euclidean`.

    torch's thread count is process-wide: it is 1 for the duration of this call (and
    restored after), so torch work running at the same time in another thread of the
    process runs single-threaded meanwhile.
    """
    import threading

    import torch

    from ..runtime import progress

    n, dim = xc.shape
    workers = max(1, min(torch.get_num_threads(), CPU_MAX_WORKERS))
    rows = _cpu_rows_per_block(n, dim, workers)
    xf = xc.to(torch.float32).numpy()
    sqf = sq64.to(torch.float32).numpy()
    rows_aug = np.empty((n, dim + 1), dtype=np.float32)
    rows_aug[:, :dim] = xf
    rows_aug[:, dim] = 1.0
    cols_aug_t = np.empty((dim + 1, n), dtype=np.float32)
    np.multiply(xf.T, -2.0, out=cols_aug_t[:dim])
    cols_aug_t[dim] = sqf
    del xf
    cand_val = torch.empty((n, m), dtype=torch.float32)
    cand_idx = torch.empty((n, m), dtype=torch.int64)
    local = threading.local()

    def one_block(s: int) -> None:
        e = min(n, s + rows)
        buf = getattr(local, "buffer", None)
        if buf is None:
            buf = local.buffer = np.empty(rows * n, dtype=np.float32)
        block = buf[: (e - s) * n].reshape(e - s, n)
        np.matmul(rows_aug[s:e], cols_aug_t, out=block)
        tb = torch.from_numpy(block)
        tb[torch.arange(e - s), torch.arange(s, e)] = float("inf")
        cand_val[s:e], cand_idx[s:e] = _smallest_per_row(tb, m, _SELECT_GROUP)

    starts = range(0, n, rows)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_controller().limit(limits=1, user_api="blas"):
            if workers == 1:
                results = map(one_block, starts)
            else:
                results = _worker_pool(workers).map(one_block, starts)
            if show_progress:
                results = progress(results, total=len(starts), desc="k-NN (euclidean)")
            for _ in results:
                pass
    finally:
        torch.set_num_threads(old_threads)
    cutoff = cand_val.max(dim=1).values.to(torch.float64) + sq64
    return cand_idx, cutoff, _row_block_bound(dim, _FLOAT32_UNIT_ROUNDOFF, sq64)


def _candidates_faiss(xc, sq64, m: int):
    r"""Candidate search with FAISS's exact float32 brute force (``IndexFlatL2``).

    FAISS returns, for every row, the ``m + 1`` smallest of *its* float32 squared distances
    (the point itself is usually among them); the point is dropped, or, when duplicates
    pushed it out, the last of the ``m + 1``.  Every other point has a FAISS distance at
    least the (m+1)-th returned one, the cutoff of the certificate; FAISS computes
    :math:`\|a\|^2 + \|b\|^2 - 2a\cdot b` from float32 norms and an ``sgemm`` (or, for
    few queries, from coordinate differences, which is more accurate), so the tile bound
    of :func:`_tile_bound` holds.
    """
    import torch

    faiss = import_faiss()
    n, dim = xc.shape
    xf = np.ascontiguousarray(xc.to(torch.float32).numpy())
    index = faiss.IndexFlatL2(dim)
    index.add(xf)
    dist, idx = index.search(xf, m + 1)
    del index, xf
    is_self = idx == np.arange(n)[:, None]
    has_self = is_self.any(axis=1)
    # drop the point itself where present, else the last (largest) column
    drop = np.where(has_self, is_self.argmax(axis=1), m)
    keep = np.ones((n, m + 1), dtype=bool)
    keep[np.arange(n), drop] = False
    cand_idx = torch.from_numpy(idx[keep].reshape(n, m).astype(np.int64))
    cutoff = torch.from_numpy(dist[:, m].astype(np.float64))
    return cand_idx, cutoff, _tile_bound(dim, _FLOAT32_UNIT_ROUNDOFF, sq64)


def _candidates_torch(x, xc, sq64, m: int, chunk_size, show_progress: bool):
    """Candidate search in torch (GPU, or CPU tiles at ``d >= SYMMETRIC_MIN_DIM``)."""
    import torch

    from ..runtime import progress

    n, dim = x.shape
    symmetric = dim >= SYMMETRIC_MIN_DIM
    if chunk_size is None:
        if symmetric:
            chunk_size = _default_euclidean_tile(x.device)
        else:
            chunk_size = _default_chunk_size(n, x.device)
            if x.device.type == "cpu":
                rows = CPU_ROW_CHUNK
                if dim <= CACHE_BLOCKED_MAX_DIM:
                    rows = max(16, min(rows, CPU_CACHE_BLOCK_BYTES // (4 * n) // 8 * 8))
                chunk_size = min(chunk_size, rows)
    # candidate precision: float32 unless its worst-case error bound, ~ (2d + 10) u, is too
    # coarse to separate the k-th from the m-th neighbour in very high dimension (there
    # nearly every row would fail the certificate and take the slow exact fallback)
    unit = _FLOAT32_UNIT_ROUNDOFF
    if (2 * dim + 10) * unit > FLOAT32_MAX_RELATIVE_BOUND:
        gemm_dtype, unit = torch.float64, _FLOAT64_UNIT_ROUNDOFF
    else:
        gemm_dtype = torch.float32
    xf = xc if gemm_dtype == torch.float64 else xc.to(gemm_dtype)
    sqf = sq64.to(gemm_dtype)
    if symmetric:
        # block = |a|^2 + |b|^2 - 2 a.b from one GEMM (addmm) and one row add: no augmented
        # copies of the data, which matters at d ~ 10^6
        rows_aug = cols_aug_t = None
    else:
        # |b|^2 - 2 a.b = [a, 1] . [-2 b, |b|^2]; the row constant |a|^2 is added afterwards
        ones = torch.ones((n, 1), dtype=gemm_dtype, device=x.device)
        rows_aug = torch.cat([xf, ones], dim=1)
        cols_aug_t = torch.cat([-2.0 * xf, sqf.unsqueeze(1)], dim=1).T.contiguous()
        del ones
    tile = max(1, min(chunk_size, n))
    cand_val = torch.full((n, m), float("inf"), dtype=gemm_dtype, device=x.device)
    cand_idx = torch.zeros((n, m), dtype=torch.int64, device=x.device)
    starts = range(0, n, tile)
    if show_progress:
        starts = progress(starts, total=len(starts), desc="k-NN (euclidean)")
    with _tf32_disabled(x.device):
        if symmetric:
            buffer = torch.empty(tile * tile, dtype=gemm_dtype, device=x.device)
            for s in starts:
                e = min(n, s + tile)
                for s2 in range(s, n, tile):
                    e2 = min(n, s2 + tile)
                    block = buffer[: (e - s) * (e2 - s2)].view(e - s, e2 - s2)
                    torch.addmm(
                        sqf[s2:e2].unsqueeze(0),
                        xf[s:e],
                        xf[s2:e2].T,
                        beta=1.0,
                        alpha=-2.0,
                        out=block,
                    )
                    block.add_(sqf[s:e].unsqueeze(1))
                    if s2 == s:
                        block.diagonal().fill_(float("inf"))
                    v, j = _smallest_per_row(block, m, _SELECT_GROUP)
                    _merge_candidates(cand_val[s:e], cand_idx[s:e], v, j + s2)
                    if s2 > s:  # the transposed block: rows s2..e2 against columns s..e
                        v, j = _smallest_per_column(block, m, _SELECT_GROUP)
                        _merge_candidates(cand_val[s2:e2], cand_idx[s2:e2], v, j + s)
            cutoff = cand_val.max(dim=1).values.to(torch.float64)
            bound = _tile_bound(dim, unit, sq64)
        else:
            buffer = torch.empty(tile * n, dtype=gemm_dtype, device=x.device)
            for s in starts:
                e = min(n, s + tile)
                block = buffer[: (e - s) * n].view(e - s, n)  # reused: no page faults
                torch.mm(rows_aug[s:e], cols_aug_t, out=block)
                block[
                    torch.arange(e - s, device=x.device),
                    torch.arange(s, e, device=x.device),
                ] = float("inf")
                cand_val[s:e], cand_idx[s:e] = _smallest_per_row(
                    block, m, _SELECT_GROUP
                )
            # m-th smallest approximate squared distance (a lower end for all non-candidates)
            cutoff = cand_val.max(dim=1).values.to(torch.float64) + sq64
            bound = _row_block_bound(dim, unit, sq64)
    return cand_idx, cutoff, bound


def _rerank_and_certify(x, k: int, m: int, cand_idx, cutoff, bound, scale: float):
    """Exact float64 k smallest distances among the candidates, certified per row.

    A row is exact when ``cutoff - bound`` (a lower bound on every non-candidate's true
    squared distance, scaled units) is not below its k-th exact candidate distance; rows
    that fail are recomputed by a full float64 brute force.
    """
    import torch

    n, dim = x.shape
    # exact float64 squared distances of the candidates, in sub-blocks of 2 MiB on the CPU
    # (cache-sized: 8x faster than 64 MiB ones at d=500), 64 MiB on a GPU
    exact_sq = torch.empty((n, m), dtype=torch.float64, device=x.device)
    sub = max(1, (2**18 if x.device.type == "cpu" else 2**23) // max(1, m * dim))
    for b in range(0, n, sub):
        diff = x[cand_idx[b : b + sub]]
        diff.sub_(x[b : b + sub].unsqueeze(1))
        exact_sq[b : b + sub] = torch.linalg.vecdot(diff, diff)
    exact_sq, _ = torch.sort(exact_sq, dim=1)
    out = exact_sq[:, :k].sqrt()
    if m < n - 1:
        ok = (cutoff - bound) * scale**2 >= exact_sq[:, k - 1]
        if not bool(ok.all()):
            rows = torch.arange(n, device=x.device)[~ok]
            out[rows] = _exact_rows_float64(
                x, rows, k, "euclidean", _default_chunk_size(n, x.device)
            )
    return out.contiguous()


def _brute_force_euclidean(
    x, k: int, chunk_size, show_progress: bool, backend: str = "brute"
):
    """Exact Euclidean k-NN by a float32 candidate search and a float64 re-rank."""
    n, dim = x.shape
    m = min(n - 1, k + 5)
    xc, sq64, scale = _prepare_euclidean(x)
    if backend == "faiss":
        found = _candidates_faiss(xc, sq64, m)
    elif x.device.type == "cpu" and chunk_size is None and _use_blas_rows(n, dim):
        found = _candidates_blas_rows(xc, sq64, m, show_progress)
    else:
        found = _candidates_torch(x, xc, sq64, m, chunk_size, show_progress)
    del xc
    return _rerank_and_certify(x, k, m, *found, scale)


def sorted_knn_distances(x, k: int, metric: str, chunk_size=None, backend="auto"):
    """(N, k) float64 tensor of distances to the 1st..k-th neighbours (self excluded)."""
    n, dim = x.shape
    if backend == "auto":
        backend = choose_backend(n, dim, metric, x.device)
    if backend == "tree":
        return _tree_query(x, k, metric)
    show = float(n) * n * dim > 2e11
    if metric == "euclidean":
        # (None: the Euclidean brute force picks its own, cache-friendlier, default)
        return _brute_force_euclidean(x, k, chunk_size, show, backend)
    if chunk_size is None:
        chunk_size = _default_chunk_size(n, x.device)
    return _brute_force_chebyshev(x, k, chunk_size, show)


def knn_distances(
    x,
    k,
    metric="euclidean",
    device=None,
    chunk_size=None,
    return_all=False,
    backend="auto",
):
    r"""Exact distance from every sample to its k-th nearest neighbour (itself excluded).

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (N, d) or (N,)
        Samples, one per row.  Finite values only.
    k : int
        Neighbour order, ``1 <= k < N``.
    metric : {"euclidean", "chebyshev"}
        Euclidean (L2) or max-norm (L-infinity) distance.
    device : {None, "auto", "cpu", "cuda", "cuda:N"} or torch.device
        Where to compute.  ``None``: the tensor's own device (numpy input: CPU).
    chunk_size : int, optional
        Rows per block of the brute force (memory ~ ``12 * N * chunk_size`` bytes), or the
        tile side of the Euclidean brute force at ``d >= SYMMETRIC_MIN_DIM`` (memory
        ~ ``4 * chunk_size**2`` bytes); giving it selects torch's block layouts (the CPU
        worker-thread layout sizes its own blocks).  Default: on the CPU, worker threads
        with blocks of about ``CPU_BLAS_BLOCK_BYTES`` (d <= 31) or ``CPU_BLAS_ROWS`` rows,
        within a 256 MiB budget in all, and 4096-wide tiles at high d; 2 GiB on CUDA.
    return_all : bool
        If True, return the (N, k) matrix of distances to the 1st..k-th neighbours.
    backend : {"auto", "tree", "brute", "faiss"}
        How the neighbours are found; every backend returns the same exact distances.
        ``"tree"``: scipy's ``cKDTree`` (CPU).  ``"brute"``: the certified float32
        brute force below (CPU or GPU).  ``"faiss"``: the same with FAISS's float32
        ``IndexFlatL2`` as candidate search (CPU, Euclidean; ``pip install
        "thermo-nb[faiss]"``).  ``"auto"`` (default): the tree up to ``TREE_MAX_DIM``
        dimensions on the CPU, else the one measured faster (:func:`choose_backend`).

    Returns
    -------
    torch.Tensor
        float64, shape (N,) (or (N, k) with ``return_all``), on the compute device.
        Exact duplicates give distance 0.

    Notes
    -----
    Low-dimensional CPU inputs (d <= ``TREE_MAX_DIM[metric]``) use scipy's ``cKDTree``;
    otherwise a chunked brute force with a float32 matmul candidate step, exact
    float64 recomputation and a certified error bound (see the module docstring).  The
    result equals a float64 ``cKDTree`` query to ~1e-12 relative, whatever the backend.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [3.0]])
    >>> knn_distances(x, 1).tolist()
    [1.0, 1.0, 2.0]
    """
    metric = check_metric(metric)
    xt = as_sample_tensor(x, "x", device)
    k = check_k(k, xt.shape[0])
    backend = check_backend(backend, metric, xt.device)
    if chunk_size is not None and (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(
            f"chunk_size must be a positive integer or None, got {chunk_size!r}"
        )
    dist = sorted_knn_distances(
        xt, k, metric, None if chunk_size is None else int(chunk_size), backend
    )
    return dist if return_all else dist[:, k - 1].contiguous()


# ----------------------------------------------------------------------------- helpers


def _jittered(x, what: str, n_zero: int):
    """Add tiny deterministic uniform noise (the documented duplicate rule) and warn."""
    import torch

    scale = x.abs().amax(dim=0).clamp_min(1.0) * _JITTER_RELATIVE
    gen = torch.Generator(device="cpu").manual_seed(0)
    noise = (torch.rand(x.shape, generator=gen, dtype=torch.float64) - 0.5).to(x.device)
    warnings.warn(
        f"{what}: {n_zero} sample(s) have a zero k-th neighbour distance (exact duplicates); "
        f"added uniform noise of relative amplitude {_JITTER_RELATIVE:g} (seed 0) before "
        "estimating. The estimate is biased by the duplicates; deduplicate or add your own "
        "noise if this is not intended.",
        RuntimeWarning,
        stacklevel=3,
    )
    return x + noise * scale


def kth_distances_without_zeros(x, k: int, metric: str, what: str, backend="auto"):
    dist = sorted_knn_distances(x, k, metric, backend=backend)[:, k - 1]
    n_zero = int((dist <= 0).sum())
    if n_zero:
        x = _jittered(x, what, n_zero)
        dist = sorted_knn_distances(x, k, metric, backend=backend)[:, k - 1]
        if bool(
            (dist <= 0).any()
        ):  # pragma: no cover - would need >1e10 identical points
            raise ValueError(
                f"{what}: zero k-th neighbour distances remain after jitter"
            )
    return x, dist


# ----------------------------------------------------------------------------- estimators


def count_strictly_within(x, radius, chunk_size=None):
    """Number of j != i with max-norm |x_i - x_j| < radius_i, for every i (int64 tensor)."""
    import torch

    n, dim = x.shape
    if _use_tree(n, dim, "chebyshev", x.device):
        from scipy.spatial import cKDTree

        pts = x.numpy()
        r = np.nextafter(
            radius.numpy(), 0.0
        )  # cKDTree counts <= r; this makes it < radius
        counts = cKDTree(pts).query_ball_point(
            pts, r=r, p=np.inf, return_length=True, workers=-1
        )
        return torch.from_numpy(np.asarray(counts, dtype=np.int64) - 1)
    if chunk_size is None:
        chunk_size = _default_chunk_size(n, x.device)
    out = torch.empty(n, dtype=torch.int64, device=x.device)
    for s in range(0, n, chunk_size):
        e = min(n, s + chunk_size)
        d = torch.cdist(x[s:e], x, p=float("inf"))
        out[s:e] = (d < radius[s:e].unsqueeze(1)).sum(
            dim=1
        ) - 1  # minus self (distance 0)
    return out
