"""Parameters of the chapter *Dimensional analysis of training: Chinchilla, Landauer, and the
information carried by one update* (``book/dimensional_analysis.ipynb``, seed 002)."""

from ..pipeline.params import ChapterSpec, Param, common_params

NAME = "dimensional_analysis"

SPEC = ChapterSpec(
    name=NAME,
    title="Dimensional analysis of training: Chinchilla, Landauer and bits per update",
    summary="k = 6 FLOP/token/parameter measured, Chinchilla optima and refits, the "
    "Landauer floor, bits changed per update, gradient noise and the critical batch.",
    params=common_params(NAME)
    + [
        Param(
            "data_path",
            str,
            "CSV of the public extracted Chinchilla data (optional)",
            default=None,
            nullable=True,
        ),
        Param(
            "n_replicas",
            int,
            "seeds per learning rate in the steps-vs-batch-size sweep",
            profiles={"quick": 3, "full": 8},
            low=1,
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
        ),
        Param(
            "sweep_max_steps",
            int,
            "step budget per batch size in the steps-to-target sweep",
            profiles={"quick": 20000, "full": 200000},
            low=10,
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
        ),
    ],
)
