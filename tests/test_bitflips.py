"""Specifications of thermo_nb.analysis.bitflips: bit counting, ulp and the
round-to-nearest rule."""

import pytest
import torch

from thermo_nb.analysis.bitflips import (
    bit_change_stats,
    count_changed_bits,
    float_bits,
    train_tracking_bit_changes,
    ulp,
    update_changes_weight,
)

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def test_changed_bits_of_hand_made_fp32_words():
    a = torch.tensor([1.0, 1.0, 1.0, 0.0])
    b = torch.tensor([-1.0, 2.0, 1.0 + 2.0**-23, 0.0])
    # 1.0 = 0x3f800000; -1.0 flips the sign bit; 2.0 = 0x40000000 -> xor 0x7f800000 (8 bits);
    # 1 + 2^-23 flips the last significand bit
    assert count_changed_bits(a, b).tolist() == [1, 8, 1, 0]
    assert hex(int(float_bits(a)[0])) == "0x3f800000"


def test_changed_bits_of_hand_made_bf16_words():
    a = torch.tensor([1.0, 1.0, 3.0], dtype=torch.bfloat16)
    b = torch.tensor([1.0078125, 1.5, 3.0], dtype=torch.bfloat16)  # 0x3f81, 0x3fc0
    assert count_changed_bits(a, b).tolist() == [1, 1, 0]


def test_bit_change_stats_fractions():
    before = [
        torch.tensor([1.0, 1.0]),
        torch.tensor([[0.5, 0.5]], dtype=torch.bfloat16),
    ]
    after = [
        torch.tensor([-1.0, 1.0]),
        torch.tensor([[0.5, -0.5]], dtype=torch.bfloat16),
    ]
    st = bit_change_stats(before, after)
    assert st["n_params"] == 4 and st["n_changed"] == 2 and st["bits_changed"] == 2
    assert st["fraction_params_changed"] == 0.5
    assert st["fraction_bits_changed"] == pytest.approx(2 / (2 * 32 + 2 * 16))


def test_ulp_matches_definition():
    assert float(ulp(torch.tensor([1.0]))) == 2.0**-23
    assert float(ulp(torch.tensor([0.02], dtype=torch.bfloat16))) == 2.0**-13
    assert float(ulp(torch.tensor([1.0], dtype=torch.float16))) == 2.0**-10
    assert float(ulp(torch.tensor([0.0]))) == 2.0**-149  # subnormal spacing
    # ulp is the gap to the next representable number
    for dt in DTYPES:
        w = torch.tensor([0.3, -7.0, 1000.0], dtype=dt)
        nxt = (w.double() + ulp(w)).to(dt)
        assert torch.all(nxt != w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_to_nearest_rule_predicts_every_stored_change(dtype):
    gen = torch.Generator().manual_seed(0)
    n = 20000
    w = (torch.randn(n, generator=gen) * 4).to(dtype)
    w[:200] = (
        torch.tensor(2.0).pow(torch.randint(-5, 5, (200,), generator=gen)).to(dtype)
    )
    s = ulp(w)
    # updates spanning the threshold, plus exact ties at ulp/2 and ulp/4
    rel = torch.pow(2.0, torch.empty(n).uniform_(-3, 2, generator=gen)).double()
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    u = sign * rel * s
    u[200:1200] = sign[200:1200] * s[200:1200] / 2
    u[:100] = -torch.sign(w[:100].double()) * s[:100] / 4
    u[100:200] = -torch.sign(w[100:200].double()) * s[100:200] * 0.3
    # as in training, the update is itself stored in the format: u = fl(u)
    u = u.to(dtype).double()
    # one rounding of the exact sum: w + u is exact in float32 (for bf16/fp16 operands within
    # 2^5 ulps) and in float64 (for fp32 operands), so no double rounding occurs
    actual = (w.double() + u).to(torch.float32).to(dtype) != w
    predicted = update_changes_weight(w, u)
    assert torch.equal(predicted, actual)
    assert 0.2 < predicted.double().mean() < 0.9  # both outcomes are exercised


def test_training_run_rule_matches_every_step_and_bf16_changes_fewer_weights():
    torch.manual_seed(0)
    x, y = torch.randn(200, 8), torch.randint(0, 3, (200,))
    out = {}
    for dt in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
        )
        out[dt] = train_tracking_bit_changes(
            net, x, y, dtype=dt, lr=0.05, batch_size=16, n_steps=40, show_progress=False
        )
        assert sum(out[dt]["rule_mismatches"]) == 0
        assert not out[dt]["diverged"]
    f32 = sum(out[torch.float32]["fraction_params_changed"])
    b16 = sum(out[torch.bfloat16]["fraction_params_changed"])
    assert b16 < f32


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="dtype"):
        count_changed_bits(
            torch.tensor([1.0], dtype=torch.float64),
            torch.tensor([1.0], dtype=torch.float64),
        )
    with pytest.raises(ValueError, match="share dtype"):
        count_changed_bits(
            torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.bfloat16)
        )
    with pytest.raises(ValueError, match="u must"):
        update_changes_weight(torch.tensor([1.0]), torch.tensor([1.0, 2.0]))
