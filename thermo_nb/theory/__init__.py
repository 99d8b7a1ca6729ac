"""Closed forms and published constants: Chinchilla scaling, Landauer energy and GPU
specifications, FLOP counting."""
