"""Training machinery: vectorised ensembles of replicas (``torch.func.vmap`` and the fused
MLP backend), the plain reference loop they are tested against."""
