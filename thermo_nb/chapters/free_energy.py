"""Parameters and verdict rules of the chapter *SGD as free-energy minimisation: the
temperature of a learning rate* (``book/free_energy.ipynb``, seed 003, arXiv:2505.23489).

The experiments themselves are in :mod:`thermo_nb.chapters.free_energy_experiments`; this
module holds the specification (profile defaults written once) and the rules that turn
measurements into verdicts, so the notebook applies them mechanically.
"""

from __future__ import annotations

from ..pipeline.params import ChapterSpec, Param, ParameterError, common_params
from ..pipeline.planning import MemoryItem, RunPlan, WorkItem
from ._data_checks import cifar10_folder

NAME = "free_energy"

PAPER_CONVNET_LRS = [
    1e-4, 1.78e-4, 3.16e-4, 5.62e-4,
    1e-3, 1.18e-3, 1.39e-3, 1.64e-3, 1.93e-3, 2.28e-3, 2.68e-3,
    3.16e-3, 3.73e-3, 4.39e-3, 5.18e-3, 6.11e-3, 7.2e-3, 8.48e-3,
    1e-2, 2.15e-2, 4.64e-2, 1e-1,
]  # fmt: skip
"""The 22 learning rates of the paper's ConvNet / CIFAR-10 runs (its notebooks' grid)."""

QUICK_LRS = [
    3.16e-3, 5.62e-3, 1e-2, 1.78e-2, 3.16e-2, 5.62e-2, 0.1, 0.178, 0.316, 0.562, 1.0
]  # fmt: skip
"""Four per decade from 10^-2.5 to 1: the UP digits network's grid."""
QUICK_OP_LRS = [1e-3, 2.15e-3, 4.64e-3, 1e-2, 2.15e-2, 4.64e-2]
"""Three per decade from 1e-3 to 0.05: the OP digits network's grid (above it the OP
network is in the random-walk regime; the smallest two never become stationary)."""

GATE_Z = 3.0
"""Stationarity gate: a drift within this many standard errors is not a drift."""
GATE_FRACTION = 0.25
"""Stationarity gate: a drift below this fraction of the gap to the neighbouring learning
rates cannot reorder the (S, U) points, whatever its significance."""


def _needs_data_root(values: dict) -> None:
    if values.get("profile") == "full" and not values.get("data_root"):
        raise ParameterError(
            "parameter 'data_root': the full profile trains ConvNet-SI on CIFAR-10 and "
            "needs data_root, a folder holding 'cifar-10-batches-py' (the python "
            "version of CIFAR-10); nothing is downloaded. Use --profile quick (digits) "
            "or pass -p data_root=/path/to/cifar"
        )


def plan(values: dict) -> RunPlan:
    """Peak memory and CPU time from the sizes (rough; coefficients measured on the quick
    profile on 2 CPU cores).  Also refuses the full profile without ``data_root``.

    The largest allocation is the entropy window of the OP network: ``window`` iterates
    of D weights for the replicas trained together (``lr_chunk``, 0 = the whole grid).
    """
    _needs_data_root(values)
    v = values
    full = v["profile"] == "full"
    c = v["op_width"]
    d_op = 27 * c + 378 * c * c if full else 64 * c + c * c
    n_lr = len(v["net_lrs"])
    n_op = len(v["op_lrs"])
    group = n_lr if not v["lr_chunk"] else min(v["lr_chunk"], n_lr)
    toy_traj = v["toy_n_lrs"] * v["toy_replicas"]
    per_step = 3e-4 * (d_op / 8192) * group if not full else 5e-3 * (d_op / 24408)
    memory = [
        MemoryItem("OP entropy window (window x D x replicas, float32)",
                   4.0 * v["window"] * d_op * group, ("window", "op_width", "lr_chunk")),
        MemoryItem("toy windows", 8.0 * 3 * v["toy_window"] * v["toy_window_replicas"]
                   * v["toy_n_lrs"] * 2, ("toy_window", "toy_window_replicas")),
    ]  # fmt: skip
    n_bs = len(v["toy_batch_sizes"]) + 2
    work = [
        WorkItem("sphere toy (UP, OP, batch sizes, momentum)",
                 n_bs * v["toy_n_steps"] * (2e-5 + 4e-8 * toy_traj),
                 ("toy_n_steps", "toy_replicas", "toy_n_lrs")),
        WorkItem("OP network", v["op_n_steps"] * per_step * n_op / group,
                 ("op_n_steps", "op_lrs", "op_width")),
        WorkItem("UP network (x batch sizes, momentum)",
                 (1 + len(v["net_batch_sizes"])) * v["up_n_steps"] * 2e-4 * n_lr,
                 ("up_n_steps", "net_lrs", "net_batch_sizes")),
    ]  # fmt: skip
    names = ("up_n_steps", "op_n_steps", "op_width", "window", "toy_n_steps")
    sizes = {k: v[k] for k in names}
    return RunPlan(memory=memory, work=work, sizes=sizes)


SPEC = ChapterSpec(
    name=NAME,
    plan=plan,
    title="SGD as free-energy minimisation: the temperature of a learning rate",
    summary="The 3-D sphere toy (OP/UP), scale-invariant networks on the unit sphere, "
    "T(eta) by the paper's convex-hull method, SNR and gradient norms, T vs eta/B.",
    params=common_params(NAME)
    + [
        Param(
            "data_root",
            str,
            "folder holding cifar-10-batches-py (full profile: required)",
            default=None,
            nullable=True,
            validator=cifar10_folder,
        ),
        Param(
            "toy_n_steps",
            int,
            "SGD steps of the sphere toy (the paper: 50,000)",
            profiles={"quick": 10000, "full": 50000},
            low=100,
            high=10_000_000,
        ),
        Param(
            "toy_n_lrs",
            int,
            "learning rates of the toy, log-spaced 1e-3..10 (80 = the paper's grid)",
            profiles={"quick": 20, "full": 80},
            low=4,
            high=400,
        ),
        Param(
            "toy_replicas",
            int,
            "independent toy trajectories per learning rate",
            profiles={"quick": 200, "full": 1000},
            low=10,
            high=100_000,
        ),
        Param(
            "toy_window",
            int,
            "consecutive toy iterates per entropy window",
            profiles={"quick": 200, "full": 1000},
            low=20,
            high=100_000,
        ),
        Param(
            "toy_window_replicas",
            int,
            "toy trajectories whose windows give S (mean and s.e.)",
            profiles={"quick": 8, "full": 32},
            low=2,
            high=1000,
        ),
        Param(
            "toy_batch_sizes",
            list,
            "toy batch sizes of the T-vs-eta/B test (the paper: 1 only)",
            profiles={"quick": [1, 4, 8], "full": [1, 2, 4, 8, 16]},
            low=1,
            high=1024,
        ),
        Param(
            "momentum",
            float,
            "heavy-ball momentum of the 'beyond the paper' runs (the paper: 0)",
            default=0.9,
            low=0.0,
            high=0.99,
        ),
        Param(
            "up_n_steps",
            int,
            "SGD steps of each UP network run (the paper: 1.6M for ConvNet)",
            profiles={"quick": 12000, "full": 1_600_000},
            low=20,
            high=100_000_000,
        ),
        Param(
            "op_n_steps",
            int,
            "SGD steps of each OP network run (the paper: 1.6M for ConvNet)",
            profiles={"quick": 6000, "full": 1_600_000},
            low=20,
            high=100_000_000,
        ),
        Param(
            "net_lrs",
            list,
            "learning-rate grid of the UP network (full: the paper's 22 values)",
            profiles={"quick": QUICK_LRS, "full": PAPER_CONVNET_LRS},
            low=1e-7,
            high=100.0,
        ),
        Param(
            "op_lrs",
            list,
            "learning-rate grid of the OP network (full: the paper's 22 values)",
            profiles={"quick": QUICK_OP_LRS, "full": PAPER_CONVNET_LRS},
            low=1e-7,
            high=100.0,
        ),
        Param(
            "up_width",
            int,
            "UP width: MLP-SI hidden units (quick) or ConvNet-SI channels c (full: 8)",
            profiles={"quick": 8, "full": 8},
            low=1,
            high=4096,
        ),
        Param(
            "op_width",
            int,
            "OP width: MLP-SI hidden units (quick) or ConvNet-SI channels c (full: 64)",
            profiles={"quick": 64, "full": 64},
            low=1,
            high=4096,
        ),
        Param(
            "batch_size",
            int,
            "minibatch size B of the networks (the paper: 128)",
            profiles={"quick": 32, "full": 128},
            low=2,
            high=8192,
        ),
        Param(
            "net_batch_sizes",
            list,
            "further batch sizes of the UP network for the T-vs-eta/B test",
            profiles={"quick": [8], "full": [32, 512]},
            low=2,
            high=8192,
        ),
        Param(
            "n_log",
            int,
            "log-spaced log points per run (the paper: 193)",
            profiles={"quick": 16, "full": 193},
            low=6,
            high=5000,
        ),
        Param(
            "n_avg",
            int,
            "last log points averaged for stationary U and S (the paper: 50)",
            profiles={"quick": 6, "full": 50},
            low=4,
            high=2000,
        ),
        Param(
            "window",
            int,
            "consecutive iterates per entropy window (the paper: 1000)",
            profiles={"quick": 100, "full": 1000},
            low=4,
            high=100_000,
        ),
        Param(
            "entropy_k",
            int,
            "neighbours K of the k-NN-graph entropy (the paper: 50)",
            profiles={"quick": 20, "full": 50},
            low=2,
            high=10_000,
        ),
        Param(
            "snr_batches",
            int,
            "minibatch gradients per log point for the SNR (the paper: 1000)",
            profiles={"quick": 32, "full": 1000},
            low=2,
            high=1_000_000,
        ),
        Param(
            "lr_chunk",
            int,
            "learning rates trained together in one ensemble (0 = all; memory)",
            profiles={"quick": 0, "full": 4},
            low=0,
            high=1000,
        ),
    ],
)


# ----------------------------------------------------------------------------- rules


def _within(error: float, tol: float, partial_factor: float = 3.0) -> str:
    """``reproduced`` within ``tol``, ``partially reproduced`` within 3 ``tol``, else
    ``not reproduced`` (the book's tolerance convention; NaN: ``inconclusive``)."""
    if not (error == error and tol == tol):  # NaN
        return "inconclusive"
    if error <= tol:
        return "reproduced"
    return "partially reproduced" if error <= partial_factor * tol else "not reproduced"


def _ci_text(fit) -> str:
    return f"{fit['slope']:.3g} [{fit['low']:.3g}, {fit['high']:.3g}]"


def rule_temperature_increases(toy_fit, net_fit) -> dict:
    """``temperature_increases_with_lr_up``: the exponent k of ``T = b eta^k`` fitted to
    the UP points (stationary, in the chaotic-equilibrium range, consistent intervals,
    end points dropped) has a 95% interval above 0.  *reproduced*: toy and network;
    *partially reproduced*: one of them; *not reproduced*: neither (with both fitted);
    *inconclusive*: a fit missing (fewer than 4 usable points)."""
    fits = {"toy": toy_fit, "network": net_fit}
    usable = {k: f for k, f in fits.items() if f is not None}
    measured = "; ".join(f"{k}: k = {_ci_text(f)}" for k, f in usable.items()) or "nan"
    up = [f["low"] > 0 for f in usable.values()]
    if len(usable) < 2:
        verdict = "partially reproduced" if any(up) else "inconclusive"
    else:
        verdict = (
            "reproduced"
            if all(up)
            else ("partially reproduced" if any(up) else "not reproduced")
        )
    return dict(
        expected="k > 0 (T increases with eta)",
        measured=measured,
        tolerance="95% CI of k above 0",
        verdict=verdict,
    )


def rule_temperature_collapse(toy_collapsing, traj_fit, gate_failed) -> dict:
    """``temperature_collapse_op``: at the smallest learning rates the OP runs never
    become stationary and their temperature goes to 0.  Toy: at every learning rate of
    the smallest quarter of the grid the OP loss has reached < 1e-12 or is still falling
    (end / half-time < 1/10): no plateau, T -> 0.  Network: the smallest learning rate
    fails the stationarity gate and the trajectory temperature ``T(t) = dU/dS`` falls
    with training (log-log slope in t with 95% CI below 0).  *reproduced*: both;
    *partially reproduced*: one; *not reproduced*: neither; *inconclusive*: the network
    fit is missing and the toy does not collapse."""
    net_ok = traj_fit is not None and gate_failed and traj_fit["high"] < 0
    parts = [
        f"toy loss collapsing at the smallest quarter of the grid: {toy_collapsing}"
    ]
    slope = _ci_text(traj_fit) if traj_fit else "nan (too few points)"
    parts.append(f"network: gate failed = {gate_failed}, d log T / d log t = {slope}")
    if traj_fit is None and not toy_collapsing:
        verdict = "inconclusive"
    elif toy_collapsing and net_ok:
        verdict = "reproduced"
    elif toy_collapsing or net_ok:
        verdict = "partially reproduced"
    else:
        verdict = "not reproduced"
    return dict(
        expected="T(t) -> 0 at small eta (loss keeps falling)",
        measured="; ".join(parts),
        tolerance="toy: L < 1e-12 or L_end < L_half / 10; network: 95% CI below 0",
        verdict=verdict,
    )


def rule_free_energy_convex(fractions: dict) -> dict:
    """``free_energy_convex``: the fraction of stationary UP points that minimise
    ``F_T`` for some T (non-empty interval with slack = 2 sqrt(2) x median s.e. of U).
    *reproduced*: every data set >= 90%; *partially reproduced*: every data set >= 2/3;
    *not reproduced*: below; *inconclusive*: fewer than 4 points in a data set."""
    ok = {k: v for k, v in fractions.items() if v is not None and v[1] >= 4}
    measured = "; ".join(
        f"{k}: {v[0]}/{v[1]} on the hull" for k, v in fractions.items() if v is not None
    )
    if len(ok) < len(fractions) or not ok:
        verdict = "inconclusive"
    else:
        fr = [v[0] / v[1] for v in ok.values()]
        verdict = (
            "reproduced"
            if min(fr) >= 0.9
            else ("partially reproduced" if min(fr) >= 2 / 3 else "not reproduced")
        )
    return dict(
        expected="every point on the lower convex hull of (S, U)",
        measured=measured or "nan",
        tolerance=">= 90% of points (slack 2 sqrt2 s.e.(U))",
        verdict=verdict,
    )


def rule_snr_vanishes_up(toy_fit, net_fit) -> dict:
    """``snr_vanishes_up``: in UP the SNR falls towards 0 as the stationary point nears
    the optimum, i.e. as eta -> 0: the log-log slope of SNR against eta over the
    stationary UP points has a 95% CI above 0 (the toy's exact SNR at its optimum is 0,
    checked in the tests).  *reproduced*: toy and network; *partially*: one;
    *not reproduced*: neither; *inconclusive*: a fit missing and the other not positive."""
    return _two_fit_rule(
        toy_fit, net_fit, lambda f: f["low"] > 0, "d log SNR / d log eta > 0"
    )


def rule_snr_bounded_op(toy_fit, net_fit, decades: dict) -> dict:
    """``snr_bounded_op``: in OP the SNR stays bounded while the full gradient vanishes.
    Along the smallest-eta trajectories we fit log SNR = c + a log |g| where |g| fell by
    at least one decade; bounded means a = 0, the UP signature (finite stochastic
    gradients while g -> 0) is a = 1.  A data set is bounded if |a| <= 0.25 + 2 s.e.
    (a quarter of the way to the UP signature, plus sampling error).  *reproduced*: toy
    and network bounded; *partially reproduced*: one of them; *not reproduced*: neither;
    *inconclusive*: no fit over a decade of |g|."""
    fits = {"toy": toy_fit, "network": net_fit}
    usable = {k: f for k, f in fits.items() if f is not None}
    ok = {k: abs(f["slope"]) <= 0.25 + 2 * f["se"] for k, f in usable.items()}
    measured = "; ".join(
        f"{k}: a = {f['slope']:.3g} ± {f['se']:.2g} ({'bounded' if ok[k] else 'falls'})"
        for k, f in usable.items()
    )
    measured += "; |g| range (decades): " + ", ".join(
        f"{k} {v:.2g}" for k, v in decades.items()
    )
    if not usable:
        verdict = "inconclusive"
    elif len(usable) == 2 and all(ok.values()):
        verdict = "reproduced"
    elif any(ok.values()):
        verdict = "partially reproduced"
    else:
        verdict = "not reproduced"
    return dict(
        expected=0.0,
        measured=measured,
        tolerance="|a| <= 0.25 + 2 s.e.; |g| spans >= 1 decade",
        verdict=verdict,
    )


def _two_fit_rule(toy_fit, net_fit, passes, expected: str) -> dict:
    fits = {"toy": toy_fit, "network": net_fit}
    usable = {k: f for k, f in fits.items() if f is not None}
    measured = "; ".join(
        f"{k}: {f['slope']:.3g} ± {f['se']:.2g} (95% CI [{f['low']:.3g}, {f['high']:.3g}])"
        for k, f in usable.items()
    )
    res = [passes(f) for f in usable.values()]
    if not usable:
        verdict = "inconclusive"
    elif len(usable) < 2:
        verdict = "partially reproduced" if any(res) else "inconclusive"
    else:
        verdict = (
            "reproduced"
            if all(res)
            else ("partially reproduced" if any(res) else "not reproduced")
        )
    return dict(
        expected=expected,
        measured=measured or "nan",
        tolerance="95% CI",
        verdict=verdict,
    )


def rule_gradient_power_law(net_fit, toy_exponent) -> dict:
    """``gradient_norm_power_law_op``: ``E|g_i| = c |g|^k`` along the smallest-eta OP
    network trajectories with k = 1 (the paper's hypothesis, provisional): *reproduced*
    if |k - 1| <= 2 s.e., *partially reproduced* within 6 s.e. (3x the tolerance), *not
    reproduced* beyond; *inconclusive* without a fit over one decade of |g|.  The toy's
    exponent (exactly 1 in theory) is reported alongside."""
    toy = f"toy k = {toy_exponent:.3g}" if toy_exponent is not None else "toy: nan"
    if net_fit is None:
        return dict(
            expected=1.0,
            measured=f"network: nan; {toy}",
            tolerance="2 s.e.",
            verdict="inconclusive",
        )
    tol = 2 * net_fit["se"]
    return dict(
        expected=1.0,
        measured=f"network k = {net_fit['slope']:.3g} ± {net_fit['se']:.2g}; {toy}",
        tolerance=f"{tol:.2g} (2 s.e.)",
        verdict=_within(abs(net_fit["slope"] - 1.0), tol),
    )


def rule_lr_over_batch(fits: dict) -> dict:
    """``temperature_depends_on_lr_over_batch``: fitting ``log T = a + k log eta - m log B``
    over several batch sizes, T depends on eta/B iff the ratio r = m/k is 1.
    *reproduced*: every data set has |r - 1| <= 2 s.e.(r); *partially reproduced*: one
    of two, or all within 6 s.e.; *not reproduced*: otherwise; *inconclusive*: no fit
    (fewer than 2 batch sizes with 3 usable points each)."""
    usable = {k: f for k, f in fits.items() if f is not None}
    if not usable:
        return dict(
            expected=1.0, measured="nan", tolerance="2 s.e.", verdict="inconclusive"
        )
    measured = "; ".join(
        f"{k}: m/k = {f['ratio']:.3g} ± {f['ratio_se']:.2g} (k = {f['k']:.3g})"
        for k, f in usable.items()
    )
    close = [abs(f["ratio"] - 1) <= 2 * f["ratio_se"] for f in usable.values()]
    near = [abs(f["ratio"] - 1) <= 6 * f["ratio_se"] for f in usable.values()]
    if all(close) and len(usable) == len(fits):
        verdict = "reproduced"
    elif any(close) or all(near):
        verdict = "partially reproduced"
    else:
        verdict = "not reproduced"
    return dict(
        expected=1.0,
        measured=measured,
        tolerance="2 s.e. of m/k",
        verdict=verdict,
    )
