"""Parameters of the chapter *Seifert's entropy decomposition and the integral fluctuation
theorem for Langevin dynamics and SGD* (``book/seifert.ipynb``, seed 000)."""

from ..pipeline.params import ChapterSpec, Param, common_params

NAME = "seifert"

SPEC = ChapterSpec(
    name=NAME,
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
        ),
        Param(
            "data_root",
            str,
            "folder holding MNIST (optional; digits are used otherwise)",
            default=None,
            nullable=True,
        ),
        Param(
            "n_trajectories",
            int,
            "trajectories per exact Langevin benchmark",
            profiles={"quick": 20000, "full": 200000},
            low=100,
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
        ),
        Param(
            "depth",
            int,
            "hidden layers of the MLP (depth + 1 linear layers)",
            profiles={"quick": 1, "full": 3},
            low=0,
        ),
        Param(
            "lr",
            float,
            "constant SGD learning rate eta",
            default=0.05,
            low=1e-6,
            high=10.0,
        ),
        Param("batch_size", int, "SGD minibatch size B", default=32, low=1),
        Param(
            "n_sgd_steps",
            int,
            "SGD steps of the entropy-production run (sec. 3)",
            profiles={"quick": 300, "full": 20000},
            low=10,
        ),
        Param(
            "record_every",
            int,
            "SGD steps between recorded snapshots (sec. 3)",
            profiles={"quick": 10, "full": 1000},
            low=1,
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
        ),
        Param(
            "grad_examples",
            int,
            "examples for the snapshot gradients of sec. 3 (0 = all)",
            profiles={"quick": 0, "full": 1024},
            low=0,
        ),
        Param(
            "n_stationary_steps",
            int,
            "steps recorded every step after convergence (TUR/NEEP)",
            profiles={"quick": 200, "full": 500},
            low=20,
        ),
        Param(
            "n_distance_steps",
            int,
            "SGD steps of the long distance-from-init run (sec. 4)",
            profiles={"quick": 20000, "full": 1000000},
            low=100,
        ),
        Param(
            "n_distance_replicas",
            int,
            "replicas of the long distance-from-init run",
            profiles={"quick": 16, "full": 64},
            low=2,
        ),
    ],
)
