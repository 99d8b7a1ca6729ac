"""MALA samples its target exactly (no step-size bias); ULA does not."""

import math

import torch

from thermo_nb.dynamics.langevin import unadjusted_langevin
from thermo_nb.dynamics.mala import exact_gaussian_langevin, mala

N = 8000  # independent chains; tolerances are 4 standard errors of the chain averages


def _var_tol(var):
    return 4 * var * math.sqrt(2 / (N - 1))


def test_mala_samples_a_gaussian_exactly_at_a_large_step():
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64)
    prec = torch.linalg.inv(cov)
    mean = torch.tensor([1.0, -1.0], dtype=torch.float64)
    energy = lambda x: 0.5 * torch.einsum("...i,ij,...j->...", x - mean, prec, x - mean)  # noqa: E731
    g = torch.Generator().manual_seed(1)
    s = mala(energy, torch.zeros(N, 2, dtype=torch.float64), 400, 0.6, generator=g)
    x = s.x
    se_mean = torch.sqrt(torch.diag(cov) / N)
    assert ((x.mean(0) - mean).abs() <= 4 * se_mean).all()
    emp = torch.cov(x.T)
    for i in range(2):
        assert abs(float(emp[i, i] - cov[i, i])) <= _var_tol(float(cov[i, i]))
    # off-diagonal: s.e. of a covariance ~ sqrt((s11 s22 + s12^2)/N)
    se12 = math.sqrt((2.0 + 0.25) / N)
    assert abs(float(emp[0, 1] - cov[0, 1])) <= 4 * se12
    assert 0.3 < float(s.accept_rate.mean()) < 1.0


def test_acceptance_tends_to_one_at_small_steps():
    energy = lambda x: 0.5 * (x**2).sum(-1)  # noqa: E731
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    small = mala(energy, x0, 20, 1e-3, generator=g).accept_rate.mean()
    big = mala(energy, x0, 20, 1.0, generator=g).accept_rate.mean()
    assert float(small) > 0.99 > float(big)


def test_ula_is_biased_and_mala_is_not():
    # U = x^2/2, h = 0.5: ULA's stationary variance is 1/(1 - h/2) = 4/3, MALA's is 1
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(N, 1, generator=g, dtype=torch.float64)
    v_ula = float(
        unadjusted_langevin(lambda x, n: x, x0, 300, 0.5, generator=g)[-1].var()
    )
    v_mala = float(
        mala(lambda x: 0.5 * (x**2).sum(-1), x0, 300, 0.5, generator=g).x.var()
    )
    assert abs(v_ula - 4 / 3) <= _var_tol(4 / 3)
    assert abs(v_mala - 1.0) <= _var_tol(1.0)
    assert v_ula - v_mala > _var_tol(4 / 3) + _var_tol(1.0)


def test_mala_is_vectorised_over_replicas_with_per_replica_steps():
    means = torch.tensor([[0.0, 0.0], [3.0, -2.0]], dtype=torch.float64)
    energy = lambda x: 0.5 * ((x - means[:, None]) ** 2).sum(-1)  # noqa: E731
    g = torch.Generator().manual_seed(4)
    x0 = torch.zeros(2, 4000, 2, dtype=torch.float64)
    s = mala(
        energy, x0, 300, torch.tensor([0.3, 0.8], dtype=torch.float64), generator=g
    )
    assert s.x.shape == (2, 4000, 2) and s.accept_rate.shape == (2, 4000)
    se = 1 / math.sqrt(4000)
    assert ((s.x.mean(1) - means).abs() <= 4 * se).all()


def test_exact_gaussian_langevin_keeps_the_stationary_law():
    g = torch.Generator().manual_seed(5)
    x = 2.0 + 1.5 * torch.randn(N, 2, generator=g, dtype=torch.float64)
    y = exact_gaussian_langevin(x, torch.tensor(2.0, dtype=torch.float64), 2.25, 0.7, g)
    assert abs(float(y.var()) - 2.25) <= 4 * 2.25 * math.sqrt(2 / (2 * N))
