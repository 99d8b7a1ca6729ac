"""Dynamics: Langevin samplers, Fokker-Planck solvers, vectorised ensemble SGD."""
