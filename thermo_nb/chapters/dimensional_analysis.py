"""Parameters of the chapter *Dimensional analysis of training: Chinchilla, Landauer, and the
information carried by one update* (``book/dimensional_analysis.ipynb``, seed 002)."""

from ..pipeline.params import ChapterSpec, Param, common_params, existing_file
from ..pipeline.planning import MemoryItem, RunPlan, WorkItem

NAME = "dimensional_analysis"


def plan(values: dict) -> RunPlan:
    """Peak memory and CPU time from the sizes (rough; coefficients measured on the quick
    profile on 2 CPU cores). The largest allocation is the widest transformer whose
    training FLOPs are counted: about 12 L d^2 weights (L = 4 layers), with gradients and
    activations about 4 float32 copies."""
    v = values
    lm_params = [12 * 4 * d * d + 2 * 256 * d for d in v["lm_widths"]]
    memory = [
        MemoryItem("widest transformer LM (weights, gradients, activations)",
                   16.0 * max(lm_params), ("lm_widths",)),
        MemoryItem("steps-vs-batch sweep ensembles", 4.0 * 64 * v["hidden"] * 1000,
                   ("hidden",)),
    ]  # fmt: skip
    work = [
        WorkItem("FLOP counting of the LMs (6 N per token, 128 tokens, 3 steps)",
                 sum(6 * n * 128 * 3 for n in lm_params) / 2e10, ("lm_widths",)),
        WorkItem("steps-to-target sweeps (fp32 with an extended lr grid, bf16)",
                 7e-4 * v["n_replicas"] * v["sweep_max_steps"],
                 ("n_replicas", "sweep_max_steps")),
        WorkItem("bit-flip runs (fp32, bf16)", 2.7e-3 * v["train_steps"] * v["hidden"] / 64,
                 ("train_steps", "hidden")),
        WorkItem("Chinchilla fits and the rest",
                 (10.0 if v["huber_grid"] == "coarse" else 60.0)
                 * (1 if v.get("data_path") is None else 3), ("huber_grid", "data_path")),
        WorkItem("bootstrap refits of the Huber fit",
                 0.3 * v["n_bootstrap"] * (1 if v.get("data_path") is None else 2),
                 ("n_bootstrap", "data_path")),
    ]  # fmt: skip
    sizes = {
        "lm_widths": v["lm_widths"], "n_replicas": v["n_replicas"],
        "sweep_max_steps": v["sweep_max_steps"], "train_steps": v["train_steps"],
        "n_bootstrap": v["n_bootstrap"],
    }  # fmt: skip
    return RunPlan(memory=memory, work=work, sizes=sizes)


SPEC = ChapterSpec(
    name=NAME,
    plan=plan,
    title="Dimensional analysis of training: Chinchilla, Landauer and bits per update",
    summary="k in C = k N D measured (6 is Kaplan et al.'s value), Chinchilla optima and "
    "the refit of the digitised Fig. 4 runs, the Landauer floor, bits changed per update "
    "against FLOPs, gradient noise and the critical batch at fp32 and bf16.",
    params=common_params(NAME)
    + [
        Param(
            "data_path",
            str,
            "CSV of the public extracted Chinchilla data (optional)",
            default=None,
            nullable=True,
            validator=existing_file,
        ),
        Param(
            "n_replicas",
            int,
            "seeds per learning rate in the steps-vs-batch-size sweep",
            profiles={"quick": 3, "full": 8},
            low=1,
            high=1000,
        ),
        Param(
            "huber_grid",
            str,
            "L-BFGS starts of the Huber fit: 'coarse' (243) or 'hoffmann' (4,500)",
            profiles={"quick": "coarse", "full": "hoffmann"},
            choices=("coarse", "hoffmann"),
        ),
        Param(
            "lm_widths",
            list,
            "d_model of the tiny transformer LMs whose FLOPs are counted",
            profiles={"quick": [32, 64, 128, 256], "full": [64, 128, 256, 512, 1024]},
            low=8,
            high=8192,
        ),
        Param(
            "hidden",
            int,
            "hidden width of the digits MLP",
            default=64,
            low=4,
            high=4096,
        ),
        Param(
            "train_steps",
            int,
            "SGD steps of the fp32/bf16 bit-flip runs",
            profiles={"quick": 1500, "full": 20000},
            low=10,
            high=100_000_000,
        ),
        Param(
            "sweep_max_steps",
            int,
            "step budget per batch size in the steps-to-target sweep",
            profiles={"quick": 20000, "full": 200000},
            low=10,
            high=100_000_000,
        ),
        Param(
            "target_loss",
            float,
            "training cross-entropy (nats) that ends a sweep run",
            default=0.1,
            low=1e-4,
            high=2.0,
        ),
        Param(
            "n_draws",
            int,
            "minibatches drawn per batch size for the gradient-norm curve",
            profiles={"quick": 64, "full": 512},
            low=4,
            high=1_000_000,
        ),
        Param(
            "n_bootstrap",
            int,
            "bootstrap resamples of the summed Huber fit (synthetic and real data)",
            profiles={"quick": 30, "full": 4000},
            low=10,
            high=100_000,
        ),
    ],
)
