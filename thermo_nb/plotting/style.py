"""One plotting style for the whole book."""

from __future__ import annotations


def set_book_style() -> None:
    """Seaborn 'whitegrid' with a colour-blind palette and figure sizes that fit the page."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook")
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "axes.titlesize": "medium",
            "figure.constrained_layout.use": True,
        }
    )
