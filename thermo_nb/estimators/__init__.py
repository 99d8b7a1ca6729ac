"""Estimators: k-NN entropies and mutual information, entropy production, gradient noise."""
