"""Grid quadrature of 2-D densities against Gaussian closed forms."""

import math

import torch

from thermo_nb.estimators.grid_quadrature import (
    grid_conditional_l_info,
    grid_cross_entropy,
    grid_entropy,
    grid_expectation,
    grid_kl_divergence,
    grid_log_density,
    grid_log_partition,
    grid_mixture_log_density,
    make_grid_2d,
)
from thermo_nb.models.ebm import quadratic_energy

# Midpoint quadrature of a Gaussian with spacing h <= sigma/2 converges like
# exp(-2 pi^2 sigma^2 / h^2) (< 1e-30 here) and the box holds all but ~exp(-L^2/2 s^2) of
# the mass (L = 8 sigma: < 1e-13): the closed forms must hold to 1e-9 nats.
TOL = 1e-9
GRID = make_grid_2d(8.0, 160)
COV = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
MEAN = torch.tensor([0.4, -0.2], dtype=torch.float64)


def _gauss_energy(mean, cov):
    return quadratic_energy(GRID.points, mean, torch.linalg.inv(cov))


def test_log_partition_matches_gaussian_normaliser():
    lz = float(grid_log_partition(_gauss_energy(MEAN, COV), GRID))
    expected = math.log(2 * math.pi) + 0.5 * math.log(float(torch.linalg.det(COV)))
    assert abs(lz - expected) < TOL


def test_entropy_matches_gaussian_closed_form():
    lp = grid_log_density(_gauss_energy(MEAN, COV), GRID)
    expected = math.log(2 * math.pi * math.e) + 0.5 * math.log(
        float(torch.linalg.det(COV))
    )
    assert abs(float(grid_entropy(lp, GRID)) - expected) < TOL


def test_kl_and_cross_entropy_match_gaussian_closed_form():
    m2, c2 = (
        torch.tensor([-0.5, 0.3], dtype=torch.float64),
        0.8 * torch.eye(2, dtype=torch.float64),
    )
    lp = grid_log_density(_gauss_energy(MEAN, COV), GRID)
    lq = grid_log_density(_gauss_energy(m2, c2), GRID)
    c2i = torch.linalg.inv(c2)
    dm = m2 - MEAN
    kl = 0.5 * (
        float(torch.trace(c2i @ COV))
        + float(dm @ c2i @ dm)
        - 2
        + math.log(float(torch.linalg.det(c2) / torch.linalg.det(COV)))
    )
    assert abs(float(grid_kl_divergence(lp, lq, GRID)) - kl) < TOL
    h = float(grid_entropy(lp, GRID))
    assert abs(float(grid_cross_entropy(lp, lq, GRID)) - (h + kl)) < TOL


def test_expectation_gives_the_second_moment():
    lp = grid_log_density(_gauss_energy(MEAN, COV), GRID)
    x1 = GRID.points[:, 0]
    assert abs(float(grid_expectation(lp, x1**2, GRID)) - (1.0 + 0.4**2)) < TOL


def test_ensemble_axis_and_conditional_l_info():
    # identical members: no information; two far-apart members: ln 2 (Eq. 25)
    e = torch.stack([_gauss_energy(MEAN, COV)] * 3)
    lp = grid_log_density(e, GRID)
    assert float(grid_conditional_l_info(lp, GRID).abs().max()) < TOL
    far = torch.stack(
        [
            _gauss_energy(torch.tensor([-4.0, 0.0], dtype=torch.float64), 0.2 * COV),
            _gauss_energy(torch.tensor([4.0, 0.0], dtype=torch.float64), 0.2 * COV),
        ]
    )
    lp = grid_log_density(far, GRID)
    info = grid_conditional_l_info(lp, GRID)
    assert torch.allclose(info, torch.full((2,), math.log(2.0), dtype=torch.float64))
    mix = grid_mixture_log_density(lp)
    assert abs(float(torch.exp(mix).sum()) * GRID.cell_area - 1.0) < TOL
