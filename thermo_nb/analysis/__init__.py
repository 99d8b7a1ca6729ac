"""Measurements over training runs: growth-law fits, batch-size sweeps (McCandlish), bits
changed per update."""
