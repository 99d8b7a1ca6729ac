"""Parameters of the chapter *Seifert's entropy decomposition and the integral fluctuation
theorem for Langevin dynamics and SGD* (``book/seifert.ipynb``, seed 000)."""

from ..pipeline.params import ChapterSpec, Param, common_params
from ..pipeline.planning import MemoryItem, RunPlan, WorkItem
from ._data_checks import mnist_folder

NAME = "seifert"


def _mlp_params(values: dict) -> int:
    """Parameters of the chapter's MLP (digits: 64 inputs; MNIST: 784; 10 classes)."""
    d_in, h, depth = (
        (784 if values["data_root"] else 64),
        values["hidden"],
        values["depth"],
    )
    if depth == 0:
        return (d_in + 1) * 10
    return (d_in + 1) * h + (depth - 1) * (h + 1) * h + (h + 1) * 10


def plan(values: dict) -> RunPlan:
    """Peak memory and CPU time of a run, from its sizes (rough: coefficients measured
    on the quick profile on 2 CPU cores; memory from the arrays each section keeps)."""
    v = values
    P = _mlp_params(v)
    P_rec = P if v["n_recorded_coords"] in (0, None) else min(P, v["n_recorded_coords"])
    M, n_traj = v["n_replicas"], v["n_trajectories"]
    steps_bench = round(2.0 / v["dt"]) + 1
    K = v["n_sgd_steps"] // v["record_every"] + 1
    memory = [
        MemoryItem("Langevin benchmark paths", 24.0 * n_traj * steps_bench,
                   ("n_trajectories", "dt")),
        MemoryItem("recorded parameters and gradients (sec. 3)", 24.0 * K * M * P_rec,
                   ("n_replicas", "n_sgd_steps", "record_every", "n_recorded_coords")),
        MemoryItem("stationary segment (sec. 3)", 12.0 * v["n_stationary_steps"] * M * P_rec,
                   ("n_stationary_steps", "n_replicas", "n_recorded_coords")),
        MemoryItem("ensemble weights, gradients, activations", 16.0 * M * P,
                   ("n_replicas", "hidden", "depth")),
        MemoryItem("stationary regression network records (sec. 3b)",
                   8.0 * 7 * 3601 * v["n_bump_replicas"] * 3, ("n_bump_replicas",)),
    ]  # fmt: skip
    work = [
        WorkItem("Langevin benchmarks", 1.9e-7 * 4 * n_traj * steps_bench,
                 ("n_trajectories", "dt")),
        WorkItem("SGD entropy run (sec. 3)",
                 3.4e-7 * M * P * (v["n_sgd_steps"] + v["n_stationary_steps"]),
                 ("n_replicas", "hidden", "depth", "n_sgd_steps")),
        WorkItem("distance from initialisation (sec. 4)",
                 7.7e-8 * v["n_distance_replicas"] * P * v["n_distance_steps"],
                 ("n_distance_replicas", "n_distance_steps", "hidden")),
        WorkItem("quadratic losses and fits", 20.0, ()),
        WorkItem("stationary regression network (sec. 3b)",
                 4.0e-6 * v["n_bump_replicas"] * 4 * 3600,
                 ("n_bump_replicas",)),
    ]  # fmt: skip
    sizes = {
        "P": P, "n_replicas": M, "n_trajectories": n_traj,
        "n_sgd_steps": v["n_sgd_steps"], "n_distance_steps": v["n_distance_steps"],
    }  # fmt: skip
    return RunPlan(memory=memory, work=work, sizes=sizes)


SPEC = ChapterSpec(
    name=NAME,
    plan=plan,
    title="Entropy production and the fluctuation theorem for Langevin dynamics and SGD",
    summary="Seifert's system/medium entropy split, the IFT on exact Langevin benchmarks, "
    "SGD on quadratics and on a digits MLP ensemble, distance-from-init growth laws.",
    params=common_params(NAME)
    + [
        Param(
            "n_replicas",
            int,
            "replicas of the SGD ensemble (sec. 3); None = profile default",
            profiles={"quick": 96, "full": 1024},
            low=8,
            high=100_000,
        ),
        Param(
            "data_root",
            str,
            "folder holding MNIST (optional; digits are used otherwise)",
            default=None,
            nullable=True,
            validator=mnist_folder,
        ),
        Param(
            "n_trajectories",
            int,
            "trajectories per exact Langevin benchmark",
            profiles={"quick": 20000, "full": 200000},
            low=100,
            high=100_000_000,
        ),
        Param(
            "dt",
            float,
            "time step of the Euler-Maruyama benchmarks (units of mu k = 1)",
            profiles={"quick": 2e-3, "full": 1e-3},
            low=1e-5,
            high=0.05,
        ),
        Param(
            "hidden",
            int,
            "width of the MLP's hidden layers",
            profiles={"quick": 16, "full": 200},
            low=1,
            high=8192,
        ),
        Param(
            "depth",
            int,
            "hidden layers of the MLP (depth + 1 linear layers)",
            profiles={"quick": 1, "full": 3},
            low=0,
            high=16,
        ),
        Param(
            "lr",
            float,
            "constant SGD learning rate eta",
            default=0.05,
            low=1e-6,
            high=10.0,
        ),
        Param(
            "batch_size", int, "SGD minibatch size B", default=32, low=1, high=1_000_000
        ),
        Param(
            "n_sgd_steps",
            int,
            "SGD steps of the entropy-production run (sec. 3)",
            profiles={"quick": 300, "full": 20000},
            low=10,
            high=100_000_000,
        ),
        Param(
            "record_every",
            int,
            "SGD steps between recorded snapshots (sec. 3)",
            profiles={"quick": 10, "full": 1000},
            low=1,
            high=1_000_000,
        ),
        Param(
            "subspace_dim",
            int,
            "k: dimension of the top-variance subspace for p(theta, t)",
            profiles={"quick": 3, "full": 8},
            low=1,
            high=50,
        ),
        Param(
            "n_recorded_coords",
            int,
            "parameter coordinates recorded (0 = all)",
            profiles={"quick": 0, "full": 2000},
            low=0,
            high=10_000_000,
        ),
        Param(
            "grad_examples",
            int,
            "examples for the snapshot gradients of sec. 3 (0 = all)",
            profiles={"quick": 0, "full": 1024},
            low=0,
            high=1_000_000,
        ),
        Param(
            "n_stationary_steps",
            int,
            "steps recorded every step after convergence (TUR/NEEP)",
            profiles={"quick": 200, "full": 500},
            low=20,
            high=1_000_000,
        ),
        Param(
            "n_distance_steps",
            int,
            "SGD steps of the long distance-from-init run (sec. 4)",
            profiles={"quick": 20000, "full": 1000000},
            low=100,
            high=1_000_000_000,
        ),
        Param(
            "n_bump_replicas",
            int,
            "replicas of the stationary 7-weight regression network (sec. 3b)",
            profiles={"quick": 192, "full": 4096},
            low=16,
            high=1_000_000,
        ),
        Param(
            "n_distance_replicas",
            int,
            "replicas of the long distance-from-init run",
            profiles={"quick": 16, "full": 64},
            low=2,
            high=100_000,
        ),
    ],
)
