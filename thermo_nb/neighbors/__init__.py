"""Exact k-nearest-neighbour search (k-d tree at low dimension, certified float32
candidates with float64 re-ranking otherwise, CPU or GPU). The estimators in
:mod:`thermo_nb.estimators.knn` are formulas on top of it."""

from .search import knn_distances

__all__ = ["knn_distances"]
