"""Parameters of the chapter *Seifert's entropy decomposition and the integral fluctuation
theorem for Langevin dynamics and SGD* (``book/seifert.ipynb``, seed 000)."""
from ..params import ChapterSpec, Param, common_params

NAME = "seifert"

SPEC = ChapterSpec(
    name=NAME,
    title="Entropy production and the fluctuation theorem for Langevin dynamics and SGD",
    summary="Seifert's system/medium entropy split, the IFT on exact Langevin benchmarks, "
            "SGD on quadratics and on a digits MLP ensemble, distance-from-init growth laws.",
    params=common_params(NAME) + [
        Param("data_root", str, "folder holding MNIST (optional; digits are used otherwise)",
              default=None, nullable=True),
        Param("n_trajectories", int, "trajectories per exact Langevin benchmark",
              profiles={"quick": 20000, "full": 200000}, low=100),
    ],
)
