"""Parameters of the chapter *Dimensional analysis of training: Chinchilla, Landauer, and the
information carried by one update* (``book/dimensional_analysis.ipynb``, seed 002)."""
from ..params import ChapterSpec, Param, common_params

NAME = "dimensional_analysis"

SPEC = ChapterSpec(
    name=NAME,
    title="Dimensional analysis of training: Chinchilla, Landauer and bits per update",
    summary="k = 6 FLOP/token/parameter measured, Chinchilla optima and refits, the "
            "Landauer floor, bits changed per update, gradient noise and the critical batch.",
    params=common_params(NAME) + [
        Param("data_path", str, "CSV of the public extracted Chinchilla data (optional)",
              default=None, nullable=True),
    ],
)
