"""Chapter *SGD noise as a heat bath* (``book/sgd_heat_bath.ipynb``, seed 001 sec. 5.1,
Parsi's Fig. 5.1): parameters, the ensemble runs, and the verdict rules.

Every verdict rule of the chapter is one function here, applied mechanically to the
measured numbers; the notebook states the same rules in prose before computing them.
"""

from __future__ import annotations

import math

import numpy as np

from ..pipeline.params import ChapterSpec, Param, ParameterError, common_params
from ..pipeline.planning import MemoryItem, RunPlan, WorkItem
from ._data_checks import mnist_folder

NAME = "sgd_heat_bath"


def plan(values: dict) -> RunPlan:
    """Peak memory and CPU time of a run from its sizes (rough: time coefficients measured
    on the quick profile on 2 CPU cores; MNIST sizes when ``data_root`` is set)."""
    v = values
    n_data, d_in = (60000, 784) if v["data_root"] else (1437, 64)
    h, depth, m = v["hidden"], v["depth"], v["n_replicas"]
    p = (d_in + 1) * h + (depth - 1) * (h + 1) * h + (h + 1) * 10
    n_b = len(v["batch_sizes"])
    records = 2 * v["n_records"] + v["autocorr_block"] + 1
    n_ex = n_data if v["pr_examples"] in (0, None) else min(n_data, v["pr_examples"])
    m_sweep = len(v["lr_factors"]) * v["n_lr_replicas"]
    m_ctrl = v["n_control_replicas"]
    grad_calls = m * n_b * records + m_sweep * v["n_records"]
    grad_calls += m_ctrl * (v["n_records"] + v["autocorr_block"])
    memory = [
        MemoryItem("noise block for the autocorrelation", 4.0 * v["autocorr_block"] * m * p,
                   ("autocorr_block", "n_replicas", "hidden", "depth")),
        MemoryItem("full-data gradient activations (vmap chunk)",
                   16.0 * m * min(n_data, 4096) * h * (depth + 1), ("n_replicas", "hidden")),
        MemoryItem("ensemble parameters, gradients and noise", 24.0 * m * p,
                   ("n_replicas", "hidden", "depth")),
        MemoryItem("per-example gradients of the isotropy probe", 12.0 * n_ex * p,
                   ("pr_examples", "hidden", "depth")),
    ]  # fmt: skip
    work = [
        WorkItem("full-data gradients at recorded steps", 2.5e-10 * grad_calls * n_data * p,
                 ("n_records", "autocorr_block", "n_replicas", "n_steps")),
        WorkItem("SGD steps of all ensembles",
                 v["n_steps"] * (2.5e-10 * p * (m * sum(v["batch_sizes"])
                                                + m_sweep * 10 + m_ctrl * 100)
                                 + 1e-3 * (n_b + 2)),
                 ("n_steps", "n_replicas", "batch_sizes")),
        WorkItem("permutation null of the autocorrelation",
                 1e-9 * v["n_permutations"] * (n_b + 1) * m * v["autocorr_block"] ** 2
                 * v["max_lag"], ("n_permutations", "autocorr_block", "max_lag")),
        WorkItem("bootstrap, tables and figures", 15.0, ("n_bootstrap",)),
    ]  # fmt: skip
    sizes = {
        "P": p,
        "n_replicas": m,
        "batch_sizes": v["batch_sizes"],
        "n_steps": v["n_steps"],
    }
    return RunPlan(memory=memory, work=work, sizes=sizes)


SPEC = ChapterSpec(
    name=NAME,
    plan=plan,
    title="SGD noise as a heat bath",
    summary="Parsi's parametric reservoir (seed 001 sec. 5.1, Fig. 5.1): is the SGD noise "
    "eta = -grad phi(b) + grad U_B stationary, white, isotropic, of width 1/B, "
    "weaker than the drift, and are ensemble averages low-variance?",
    params=common_params(NAME)
    + [
        Param(
            "data_root",
            str,
            "folder holding MNIST (required by the full profile; quick uses digits)",
            default=None,
            nullable=True,
            validator=mnist_folder,
        ),
        Param(
            "n_replicas",
            int,
            "replicas of each batch-size ensemble (Parsi: 50 trials)",
            profiles={"quick": 50, "full": 50},
            low=4,
            high=4096,
        ),
        Param(
            "batch_sizes",
            list,
            "minibatch sizes |b_t| of Fig. 5.1 (at least two)",
            profiles={"quick": [1, 10, 100], "full": [1, 10, 100]},
            low=1,
            high=60000,
        ),
        Param(
            "lr",
            float,
            "SGD learning rate r (mobility mu = r per step)",
            profiles={"quick": 0.05, "full": 0.01},
            low=1e-5,
            high=1.0,
        ),
        Param(
            "hidden",
            int,
            "width of the MLP's hidden layers (Parsi: 200)",
            profiles={"quick": 32, "full": 200},
            low=1,
            high=4096,
        ),
        Param(
            "depth",
            int,
            "hidden layers of the MLP (depth + 1 linear layers; Parsi: four layers)",
            profiles={"quick": 3, "full": 3},
            low=1,
            high=16,
        ),
        Param(
            "n_steps",
            int,
            "SGD steps of every ensemble",
            profiles={"quick": 2000, "full": 10000},
            low=20,
            high=10_000_000,
        ),
        Param(
            "n_records",
            int,
            "recorded steps (log-spaced, plus as many evenly spaced in the late half)",
            profiles={"quick": 30, "full": 60},
            low=4,
            high=5000,
        ),
        Param(
            "autocorr_block",
            int,
            "consecutive steps at the end whose noise feeds the autocorrelation",
            profiles={"quick": 50, "full": 60},
            low=3,
            high=5000,
        ),
        Param(
            "max_lag",
            int,
            "largest autocorrelation lag (steps); < autocorr_block",
            profiles={"quick": 20, "full": 20},
            low=1,
            high=1000,
        ),
        Param(
            "n_permutations",
            int,
            "time permutations of the white-noise null (> 100 x number of batch sizes "
            "to resolve its 1 % level)",
            profiles={"quick": 500, "full": 2000},
            low=50,
            high=100_000,
        ),
        Param(
            "lr_factors",
            list,
            "learning rates lr * factor of the temperature sweep (batch = middle size)",
            profiles={"quick": [0.25, 0.5, 2.0], "full": [0.25, 0.5, 2.0]},
            low=0.01,
            high=100.0,
        ),
        Param(
            "n_lr_replicas",
            int,
            "replicas per learning rate of the sweep",
            profiles={"quick": 10, "full": 20},
            low=2,
            high=1024,
        ),
        Param(
            "n_control_replicas",
            int,
            "replicas of the epoch-shuffling control (coloured noise)",
            profiles={"quick": 20, "full": 20},
            low=2,
            high=1024,
        ),
        Param(
            "probe_dim",
            int,
            "k: random parameter coordinates of the isotropy probe",
            profiles={"quick": 50, "full": 100},
            low=2,
            high=10000,
        ),
        Param(
            "n_probe_replicas",
            int,
            "replicas per batch size whose noise covariance is probed",
            profiles={"quick": 8, "full": 8},
            low=2,
            high=1024,
        ),
        Param(
            "pr_examples",
            int,
            "training examples of the per-example gradient covariance (0 = all)",
            profiles={"quick": 0, "full": 2048},
            low=0,
            high=1_000_000,
        ),
        Param(
            "n_bootstrap",
            int,
            "bootstrap resamples of replicas for standard errors",
            profiles={"quick": 1000, "full": 1000},
            low=100,
            high=100_000,
        ),
    ],
)


# ----------------------------------------------------------------------------- set-up


def check_config(cfg) -> None:
    """Cross-parameter checks, before any compute (raises ParameterError)."""
    if cfg["profile"] == "full" and not cfg["data_root"]:
        raise ParameterError(
            "parameter 'data_root': the full profile trains on MNIST read from a local "
            "folder (mnist.npz or the four IDX files); pass -p data_root=/path/to/mnist. "
            "Nothing is downloaded. (Use profile='quick' for scikit-learn's digits.)"
        )
    if len(set(cfg["batch_sizes"])) < 2 or any(
        float(b) != int(b) for b in cfg["batch_sizes"]
    ):
        raise ParameterError(
            f"parameter 'batch_sizes': needs at least two distinct integers; got "
            f"{cfg['batch_sizes']!r}"
        )
    if cfg["max_lag"] >= cfg["autocorr_block"]:
        raise ParameterError(
            f"parameter 'max_lag': must be < autocorr_block = {cfg['autocorr_block']}; "
            f"got {cfg['max_lag']}"
        )
    if cfg["autocorr_block"] >= cfg["n_steps"] // 2:
        raise ParameterError(
            f"parameter 'autocorr_block': must be < n_steps / 2 = {cfg['n_steps'] // 2}; "
            f"got {cfg['autocorr_block']}"
        )


def load_data(cfg):
    """MNIST from ``data_root`` if given, else scikit-learn's digits (quick profile)."""
    from ..data import load_digits_tensors, load_mnist

    if cfg["data_root"]:
        return load_mnist(cfg["data_root"], device=cfg.torch_device)
    return load_digits_tensors(device=cfg.torch_device, seed=cfg["seed"])


def record_schedule(n_steps: int, n_records: int, block: int) -> dict:
    """Recorded steps: log-spaced over the run, evenly spaced in the late half (the
    stationarity window) and a block of consecutive steps at the end (autocorrelation)."""
    log = np.unique(np.round(np.geomspace(1, n_steps - 1, n_records)).astype(int))
    window = np.unique(
        np.round(np.linspace(n_steps // 2, n_steps - block - 1, n_records)).astype(int)
    )
    ac = np.arange(n_steps - block, n_steps)
    return {
        "record_at": np.unique(np.r_[0, log, window]),
        "window": window,
        "autocorr": ac,
    }


def run_ensemble(
    cfg,
    data,
    batch_size: int,
    lr,
    n_replicas: int,
    *,
    sampling: str = "replacement",
    seed_offset: int = 0,
    evaluate: bool = True,
    with_block: bool = True,
    probe: bool = True,
) -> dict:
    """Train one ensemble with :class:`thermo_nb.EnsembleTrainer` and record the noise
    (:func:`thermo_nb.estimators.noise_statistics.record_sgd_noise`), then probe the
    per-example gradient covariance of ``n_probe_replicas`` replicas at the end."""
    import torch

    from ..estimators import noise_statistics as ns
    from ..estimators.gradient_noise import per_sample_gradients
    from ..models import MLP
    from ..training.ensemble import EnsembleTrainer

    def make():
        return MLP(data.in_dim, cfg["hidden"], data.n_classes, depth=cfg["depth"])

    model = make().to(cfg.torch_device)
    trainer = EnsembleTrainer(
        make,
        n_replicas,
        data.x_train,
        data.y_train,
        lr=lr,
        batch_size=int(batch_size),
        seed=cfg["seed"] * 7919 + seed_offset,
        sampling=sampling,
        device=cfg.torch_device,
    )
    sched = record_schedule(cfg["n_steps"], cfg["n_records"], cfg["autocorr_block"])
    spec = trainer.spec
    last = spec.names[-2] if spec.names[-1].endswith("bias") else spec.names[-1]
    offset = sum(spec.numels[: spec.names.index(last)])
    track = [offset + 3]  # one weight of the last layer (Fig. 5.1a)
    groups = ns.parameter_groups(spec, by="tensor")
    res = ns.record_sgd_noise(
        trainer,
        model,
        cfg["n_steps"],
        sched["record_at"] if evaluate else sched["window"],
        autocorr_steps=sched["autocorr"] if with_block else None,
        max_lag=cfg["max_lag"],
        track=track,
        x_eval=data.x_test if evaluate else None,
        y_eval=data.y_test if evaluate else None,
        groups=groups,
        n_permutations=cfg["n_permutations"],
        permutation_seed=cfg["seed"],
        desc=f"B = {batch_size} ({sampling})",
    )
    res["window"] = sched["window"]
    res["group_sizes"] = np.array(
        [sum(s.stop - s.start for s in v) for v in groups.values()]
    )
    res["lr"] = trainer.lr.double().cpu().numpy()
    res["batch_size"] = int(batch_size)
    if probe:
        gen = np.random.default_rng(cfg["seed"] + 17)
        n_ex = data.x_train.shape[0]
        ex = (
            np.arange(n_ex)
            if cfg["pr_examples"] in (0, None) or cfg["pr_examples"] >= n_ex
            else np.sort(gen.choice(n_ex, cfg["pr_examples"], replace=False))
        )
        coords = np.sort(gen.choice(spec.n_params, cfg["probe_dim"], replace=False))
        xs, ys = data.x_train[ex], data.y_train[ex]
        pr_probe, pr_full, tr_sigma = [], [], []
        for m in range(min(cfg["n_probe_replicas"], n_replicas)):
            one = {k: v[m].detach() for k, v in trainer.params.items()}
            g = torch.cat(
                [
                    per_sample_gradients(model, one, xs[i : i + 2048], ys[i : i + 2048])
                    for i in range(0, len(ex), 2048)
                ]
            )
            pr_probe.append(ns.participation_ratio(g[:, coords], population=True))
            pr_full.append(ns.participation_ratio(g, population=True))
            gc = g.double() - g.double().mean(0)
            tr_sigma.append(float((gc**2).sum()) / len(ex))
        res["probe"] = {
            "pr_probe": np.array(pr_probe),
            "pr_full": np.array(pr_full),
            "trace_sigma": np.array(tr_sigma),
            "k": int(cfg["probe_dim"]),
            "n_examples": len(ex),
        }
    return res


# ----------------------------------------------------------------------------- statistics


def bootstrap_replicas(fn, arrays, n_boot: int, seed: int) -> tuple:
    """``fn(*arrays)`` and its bootstrap standard error, resampling the replica axis
    (axis 1 of every array, or axis 0 of 1-D arrays) with replacement."""
    rng = np.random.default_rng(seed)
    value = fn(*arrays)
    m = arrays[0].shape[1] if arrays[0].ndim > 1 else arrays[0].shape[0]
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, m, m)
        boots.append(fn(*[a[:, i] if a.ndim > 1 else a[i] for a in arrays]))
    return value, float(np.std(boots, ddof=1))


def window_mask(res) -> np.ndarray:
    """Recorded steps that belong to the late-half window."""
    return np.isin(res["steps"], res["window"])


def variance_drift(res, n_boot: int, seed: int) -> tuple:
    """Change of ln(ensemble-mean noise variance) across the window, from a straight-line
    fit of ln v against step, with its replica-bootstrap s.e."""
    w = window_mask(res)
    steps = res["steps"][w].astype(float)
    ok = ~res["diverged"]
    v = res["noise_var"][w][:, ok]

    def drift(vv):
        slope = np.polyfit(steps, np.log(vv.mean(1)), 1)[0]
        return slope * (steps[-1] - steps[0])

    return bootstrap_replicas(drift, [v], n_boot, seed)


def window_mean(res, key: str = "noise_var") -> np.ndarray:
    """Per-replica mean of ``res[key]`` over the window records, finite replicas."""
    return res[key][window_mask(res)][:, ~res["diverged"]].mean(0)


def loglog_slope(x_groups, y_groups, n_boot: int, seed: int) -> tuple:
    """Slope of ln(mean y) against ln x over groups of replicas (one group per x), with a
    bootstrap s.e. that resamples replicas within each group independently."""
    rng = np.random.default_rng(seed)
    lx = np.log(np.asarray(x_groups, dtype=float))

    def fit(ys):
        return float(np.polyfit(lx, np.log([y.mean() for y in ys]), 1)[0])

    slope = fit(y_groups)
    boots = [
        fit([y[rng.integers(0, len(y), len(y))] for y in y_groups])
        for _ in range(n_boot)
    ]
    return slope, float(np.std(boots, ddof=1))


def layer_temperatures(res, lr: float) -> dict:
    """Implied temperature ``lr <eta_i^2>_layer / 2`` per layer (weights and bias pooled,
    weighted by size), per replica over the window: label -> array (M,)."""
    gv = res["group_var"][window_mask(res)][:, ~res["diverged"]].mean(0)  # (M, groups)
    sizes = res["group_sizes"]
    out: dict = {}
    for j, label in enumerate(res["group_labels"]):
        layer = label.rpartition(".")[0]
        acc = out.setdefault(layer, [0.0, 0])
        acc[0] = acc[0] + gv[:, j] * sizes[j]
        acc[1] += sizes[j]
    return {f"layer {i + 1}": lr * s / n / 2 for i, (s, n) in enumerate(out.values())}


def shuffle_autocorrelation(n_data: int, batch_size: int, lags) -> np.ndarray:
    """Approximate autocorrelation of the noise under epoch shuffling (batches drawn
    without replacement): with ``n_b = n_data // batch_size`` batches per epoch and quasi-
    static parameters, the ``n_b`` noises of one epoch sum to about zero, so two batches of
    one epoch correlate as ``-1/(n_b - 1)``; a pair at lag ``tau`` shares an epoch with
    probability ``1 - tau/n_b``."""
    n_b = n_data // batch_size
    lags = np.asarray(lags, dtype=float)
    rho = -np.clip(1 - lags / n_b, 0, None) / max(n_b - 1, 1)
    return np.where(lags == 0, 1.0, rho)


# ----------------------------------------------------------------------------- verdicts


def verdict_noise_stationary(drifts: dict) -> str:
    """``drifts``: B -> (Delta ln v over the window, s.e.).  *reproduced* if every
    |Delta| <= 3 s.e.; *partially reproduced* if not, but every |Delta| < ln(10)/2 (the
    drift is below half the decade that separates neighbouring batch sizes); else
    *not reproduced*."""
    vals = list(drifts.values())
    if not vals or any(not math.isfinite(d) or not math.isfinite(s) for d, s in vals):
        return "inconclusive"
    if all(abs(d) <= 3 * s for d, s in vals):
        return "reproduced"
    if all(abs(d) < math.log(10) / 2 for d, _ in vals):
        return "partially reproduced"
    return "not reproduced"


def verdict_noise_white(p_values: dict, level: float = 0.01) -> str:
    """``p_values``: B -> permutation p-value of the portmanteau statistic.  *reproduced*
    if every p >= level / (number of batch sizes) (Bonferroni); *partially reproduced* if
    some are; else *not reproduced*."""
    ps = [p for p in p_values.values() if math.isfinite(p)]
    if len(ps) != len(p_values) or not ps:
        return "inconclusive"
    ok = [p >= level / len(ps) for p in ps]
    return (
        "reproduced"
        if all(ok)
        else "partially reproduced"
        if any(ok)
        else "not reproduced"
    )


def verdict_slope(slope: float, se: float, expected: float) -> str:
    """Fitted exponent against its prediction: *reproduced* if within 3 s.e., *partially
    reproduced* if within 9 s.e. (3x the tolerance, the book's ``partial_factor``), else
    *not reproduced*; *inconclusive* for a non-finite fit."""
    if not (math.isfinite(slope) and math.isfinite(se)):
        return "inconclusive"
    err = abs(slope - expected)
    if err <= 3 * se:
        return "reproduced"
    return "partially reproduced" if err <= 9 * se else "not reproduced"


def verdict_force_dominates(ratios: dict) -> str:
    """``ratios``: B -> (|grad U_B|^2 / <|eta|^2>, s.e.).  *reproduced* if every ratio
    exceeds 1 by more than 3 s.e.; *partially reproduced* if some do; *not reproduced* if
    none does."""
    vals = list(ratios.values())
    if not vals or any(not math.isfinite(r) for r, _ in vals):
        return "inconclusive"
    ok = [r - 3 * s > 1 for r, s in vals]
    return (
        "reproduced"
        if all(ok)
        else "partially reproduced"
        if any(ok)
        else "not reproduced"
    )


def verdict_low_variance(spread_over_resolution: dict) -> str:
    """``spread_over_resolution``: (quantity, B) -> std across replicas divided by the
    quantity's single-run test-set resolution.  *reproduced* if every ratio <= 1;
    *partially reproduced* if some are; else *not reproduced*."""
    vals = list(spread_over_resolution.values())
    if not vals or any(not math.isfinite(v) for v in vals):
        return "inconclusive"
    ok = [v <= 1 for v in vals]
    return (
        "reproduced"
        if all(ok)
        else "partially reproduced"
        if any(ok)
        else "not reproduced"
    )


def verdict_layers_differ(log_ratios: dict) -> str:
    """``log_ratios``: B -> (ln(max_l T_l / min_l T_l), s.e.).  *reproduced* if every log
    ratio exceeds 3 s.e.; *partially reproduced* if some do; else *not reproduced*."""
    vals = list(log_ratios.values())
    if not vals or any(not math.isfinite(r) for r, _ in vals):
        return "inconclusive"
    ok = [r > 3 * s for r, s in vals]
    return (
        "reproduced"
        if all(ok)
        else "partially reproduced"
        if any(ok)
        else "not reproduced"
    )


def verdict_isotropic(prs: dict, k: int) -> str:
    """``prs``: B -> (participation ratio in the k-coordinate probe, s.e. over replicas).
    Isotropy (Eq. 20, ``<eta_i eta_j> ∝ delta_ij``) predicts PR = k.  *reproduced* if
    every |PR - k| <= 3 s.e.; *refuted* if every PR < k/2 - 3 s.e. (the noise fills
    fewer than half of the probed directions); otherwise *not reproduced*."""
    vals = list(prs.values())
    if not vals or any(not math.isfinite(p) for p, _ in vals):
        return "inconclusive"
    if all(abs(p - k) <= 3 * s for p, s in vals):
        return "reproduced"
    if all(p < k / 2 - 3 * s for p, s in vals):
        return "refuted"
    return "not reproduced"


# ----------------------------------------------------------------------------- chapter glue


def run_lr_sweep(cfg, data, batch_size: int) -> dict:
    """The learning-rate sweep: ``n_lr_replicas`` replicas at each ``lr * factor``, one
    ensemble with per-replica learning rates, noise recorded over the window only."""
    lrs = np.repeat([cfg["lr"] * f for f in cfg["lr_factors"]], cfg["n_lr_replicas"])
    return run_ensemble(
        cfg,
        data,
        batch_size,
        lrs,
        len(lrs),
        seed_offset=7,
        evaluate=False,
        with_block=False,
        probe=False,
    )


def run_shuffle_control(cfg, data, batch_size: int) -> dict:
    """The coloured-noise control: epoch shuffling (batches without replacement)."""
    return run_ensemble(
        cfg,
        data,
        batch_size,
        cfg["lr"],
        cfg["n_control_replicas"],
        sampling="shuffle",
        seed_offset=11,
        evaluate=False,
        probe=False,
    )


def stationarity_table(runs: dict, n_boot: int, seed: int):
    """Drift of ln<eta^2> across the window per batch size: (drift dict, DataFrame)."""
    import pandas as pd

    drift = {b: variance_drift(r, n_boot, seed) for b, r in runs.items()}

    def v_at(r, i):
        return r["noise_var"][i][~r["diverged"]].mean()

    tab = pd.DataFrame(
        {
            f"B = {b}": {
                "window (steps)": f"{r['window'][0]}–{r['window'][-1]}",
                "⟨η²⟩ at step 0": v_at(r, 0),
                "max over run": r["noise_var"][:, ~r["diverged"]].mean(1).max(),
                "⟨η²⟩ at the end": v_at(r, -1),
                "Δ ln⟨η²⟩ (window)": drift[b][0],
                "s.e.": drift[b][1],
                "|Δ| / s.e.": abs(drift[b][0]) / drift[b][1],
            }
            for b, r in runs.items()
        }
    )
    return drift, tab


def whiteness_table(runs: dict, control: dict):
    """Portmanteau p-values per batch size and for the control: (p dict, DataFrame)."""
    import pandas as pd

    ac = {f"B = {b}": r["autocorr"] for b, r in runs.items()}
    ac[f"B = {control['batch_size']}, shuffled epochs"] = control["autocorr"]
    tab = pd.DataFrame(
        {
            k: {
                "ρ(1)": a["rho"][1],
                "99 % band at τ=1": f"[{a['band'][0, 1]:.3f}, {a['band'][1, 1]:.3f}]",
                "Q": a["q"],
                "p-value": a["p_value"],
            }
            for k, a in ac.items()
        }
    )
    return {b: r["autocorr"]["p_value"] for b, r in runs.items()}, tab


def batch_and_temperature(runs: dict, sweep: dict, lr: float, n_boot: int, seed: int):
    """Exponents of <eta^2> in B and of k_BT in r/B, the points of the temperature plot
    and their table: (dict, DataFrame)."""
    import pandas as pd

    from ..estimators.noise_statistics import implied_temperature

    bs = np.array(list(runs), dtype=float)
    vw = [window_mean(r) for r in runs.values()]
    slope_v, se_v = loglog_slope(bs, vw, n_boot, seed)
    points = [
        dict(lr=lr, B=b, T=implied_temperature(lr, v), kind="batch")
        for b, v in zip(bs, vw)
    ]
    sw_lr, sw_v = sweep["lr"][~sweep["diverged"]], window_mean(sweep)
    points += [
        dict(
            lr=x,
            B=sweep["batch_size"],
            T=implied_temperature(x, sw_v[sw_lr == x]),
            kind="lr",
        )
        for x in np.unique(sw_lr)
    ]
    x_t = np.array([p["lr"] / p["B"] for p in points])
    t_means = np.array([p["T"].mean() for p in points])
    slope_t, se_t = loglog_slope(x_t, [p["T"] for p in points], n_boot, seed)
    fits = {
        "variance": dict(
            slope=slope_v,
            intercept=np.polyfit(np.log(bs), np.log([v.mean() for v in vw]), 1)[1],
        ),
        "temperature": dict(
            slope=slope_t, intercept=np.polyfit(np.log(x_t), np.log(t_means), 1)[1]
        ),
    }
    tab = pd.DataFrame(
        [
            {
                "lr": p["lr"],
                "B": int(p["B"]),
                "lr/B": p["lr"] / p["B"],
                "k_BT (nats/step)": p["T"].mean(),
                "s.e.": p["T"].std(ddof=1) / len(p["T"]) ** 0.5,
                "k_BT · B / lr": p["T"].mean() * p["B"] / p["lr"],
            }
            for p in points
        ]
    )
    out = dict(slope_v=slope_v, se_v=se_v, slope_t=slope_t, se_t=se_t)
    return dict(out, points=points, fits=fits), tab


def forces_and_layers(runs: dict, lr: float, n_boot: int, seed: int):
    """Power ratio |grad U_B|^2/<|eta|^2> and ln(T_max/T_min) over layers per batch size,
    with bootstrap s.e.: (force dict, layer-temperature dict, log-ratio dict, DataFrame)."""
    import pandas as pd

    force, layer_t, layer_ratio, rows = {}, {}, {}, {}
    for b, r in runs.items():
        g2, v, p = window_mean(r, "grad_norm2"), window_mean(r), r["n_params"]
        force[b] = bootstrap_replicas(
            lambda g, vv, p=p: g.mean() / (p * vv.mean()), [g2, v], n_boot, seed
        )
        layer_t[b] = layer_temperatures(r, lr)
        layer_ratio[b] = bootstrap_replicas(
            lambda *t: np.log(max(x.mean() for x in t) / min(x.mean() for x in t)),
            list(layer_t[b].values()),
            n_boot,
            seed,
        )
        rows[f"B = {b}"] = {
            "|∇U|²/⟨|η|²⟩": force[b][0],
            "s.e.": force[b][1],
            "max|∂U| (Parsi's line)": r["grad_max"][:, ~r["diverged"]].max(),
            "window ⟨η²⟩": v.mean(),
            "T_max/T_min": np.exp(layer_ratio[b][0]),
            **{f"k_BT {k}": t.mean() for k, t in layer_t[b].items()},
        }
    return force, layer_t, layer_ratio, pd.DataFrame(rows)


def isotropy_table(runs: dict, k: int):
    """Participation ratio in the k-coordinate probe per batch size (mean, s.e. over the
    probed replicas) and for scale the full-space PR: (dict, DataFrame)."""
    import pandas as pd

    iso, rows = {}, {}
    for b, r in runs.items():
        pr = r["probe"]["pr_probe"]
        iso[b] = (pr.mean(), pr.std(ddof=1) / len(pr) ** 0.5)
        rows[f"B = {b}"] = {
            "PR in probe": iso[b][0],
            "s.e.": iso[b][1],
            "isotropic: k": k,
            "PR / k": iso[b][0] / k,
            "PR full space": r["probe"]["pr_full"].mean(),
            "P": r["n_params"],
            "rank bound N−1": r["probe"]["n_examples"] - 1,
        }
    return iso, pd.DataFrame(rows)


def low_variance_table(runs: dict):
    """At the last record: std across replicas of accuracy, loss and conditional L-info
    over their one-run resolution (median test-set s.e.): (dict, DataFrame)."""
    import pandas as pd

    names = {"accuracy": "accuracy", "loss": "loss", "info": "cond. L-info"}
    lv, rows = {}, {}
    for b, r in runs.items():
        ok = ~r["diverged"]
        for f, name in names.items():
            vals, res = r[f][-1, ok], float(np.median(r[f + "_se"][-1, ok]))
            lv[(f, b)] = vals.std(ddof=1) / res
            rows[(name, f"B = {b}")] = {
                "ensemble mean": vals.mean(),
                "std across replicas": vals.std(ddof=1),
                "relative spread": vals.std(ddof=1) / abs(vals.mean()),
                "one-run resolution (s.e.)": res,
                "std / resolution": lv[(f, b)],
            }
    return lv, pd.DataFrame(rows).T


def matched_loss_exponents(runs: dict, n_levels: int, n_boot: int, seed: int):
    """Exponent of <eta^2> in B with the runs compared at equal training loss instead of
    equal step: for each loss level (log-spaced between 0.9 x the smallest initial loss
    and 1.05 x the largest final loss, so every run reaches it) take each run's first
    record whose ensemble-mean training loss is at or below it.  Context for
    ``noise_variance_inverse_batch`` (not its rule): DataFrame."""
    import pandas as pd

    bs = np.array(list(runs), dtype=float)
    losses = {b: r["train_loss"][:, ~r["diverged"]].mean(1) for b, r in runs.items()}
    hi = 0.9 * min(v[0] for v in losses.values())
    lo = 1.05 * max(v.min() for v in losses.values())
    rows = []
    for level in np.geomspace(hi, lo, n_levels) if lo < hi else []:
        idx = {b: int(np.argmax(v <= level)) for b, v in losses.items()}
        v = [r["noise_var"][idx[b]][~r["diverged"]] for b, r in runs.items()]
        slope, se = loglog_slope(bs, v, n_boot, seed)
        rows.append(
            {
                "training loss ≤": level,
                **{f"step (B = {b})": int(runs[b]["steps"][i]) for b, i in idx.items()},
                "exponent of ⟨η²⟩ in B": slope,
                "s.e.": se,
            }
        )
    return pd.DataFrame(rows)
