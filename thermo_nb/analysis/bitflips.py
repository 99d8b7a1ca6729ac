"""Bits that change in one parameter update, and the round-to-nearest rule that predicts them.

The seed reads "the number of bits that change during a parameter update as a measure of the
information gained". This module measures that number exactly, through integer views of the
stored floating-point words (``int32`` for fp32, ``int16`` for bf16/fp16), and states the
floating-point rule that decides whether an update changes a stored weight at all:
under round-to-nearest-even, ``fl(w + u) = w`` whenever ``|u| < ulp(w)/2``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = [
    "FORMATS",
    "float_bits",
    "count_changed_bits",
    "bit_change_stats",
    "ulp",
    "update_changes_weight",
    "train_tracking_bit_changes",
]

# significand bits p (with the implicit bit), smallest normal exponent, integer view, width
FORMATS = {
    torch.float32: {"p": 24, "emin": -126, "int": torch.int32, "bits": 32},
    torch.bfloat16: {"p": 8, "emin": -126, "int": torch.int16, "bits": 16},
    torch.float16: {"p": 11, "emin": -14, "int": torch.int16, "bits": 16},
}
"""Binary formats handled here: significand precision, minimum exponent, integer view."""

_POPCOUNT8 = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.uint8)


def _check_float(name, t):
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
    if t.dtype not in FORMATS:
        raise ValueError(
            f"{name} must have dtype float32, bfloat16 or float16; got {t.dtype}"
        )


def float_bits(x: torch.Tensor) -> torch.Tensor:
    """The stored bit pattern of a float tensor as integers (a view, no copy).

    ``float32 -> int32``, ``bfloat16``/``float16 -> int16``.

    Examples
    --------
    >>> hex(int(float_bits(torch.tensor([1.0]))[0]))
    '0x3f800000'
    """
    _check_float("x", x)
    return x.contiguous().view(FORMATS[x.dtype]["int"])


def count_changed_bits(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Number of stored bits that differ between two tensors of the same float format.

    Parameters
    ----------
    before, after : tensor, same shape and dtype (float32, bfloat16 or float16)

    Returns
    -------
    tensor of int64, shape of the inputs
        Hamming distance ``popcount(bits(before) XOR bits(after))`` of each element.

    Examples
    --------
    >>> count_changed_bits(torch.tensor([1.0, 2.0]), torch.tensor([1.0, -2.0])).tolist()
    [0, 1]
    """
    _check_float("before", before)
    _check_float("after", after)
    if before.dtype != after.dtype or before.shape != after.shape:
        raise ValueError(
            f"before and after must share dtype and shape; got {before.dtype} "
            f"{tuple(before.shape)} and {after.dtype} {tuple(after.shape)}"
        )
    x = torch.bitwise_xor(float_bits(before), float_bits(after))
    nbytes = FORMATS[before.dtype]["bits"] // 8
    by = x.reshape(-1).view(torch.uint8).reshape(-1, nbytes).long()
    table = _POPCOUNT8.to(by.device).long()
    return table[by].sum(dim=1).reshape(before.shape)


def bit_change_stats(before, after) -> dict:
    """Fraction of parameters and of stored bits that changed in one update.

    Parameters
    ----------
    before, after : tensor or sequence of tensors (same dtypes and shapes pairwise)
        Parameters before and after the update.

    Returns
    -------
    dict
        ``n_params``, ``n_changed`` (parameters whose stored word changed), ``bits_changed``,
        ``fraction_params_changed`` = n_changed / n_params, ``fraction_bits_changed`` =
        bits_changed / (n_params * word width), ``bits_per_changed_param``.
    """
    if isinstance(before, torch.Tensor):
        before, after = [before], [after]
    if len(before) != len(after) or not before:
        raise ValueError(
            "before and after must hold the same (non-zero) number of tensors"
        )
    n = nch = bits = width_bits = 0
    for b, a in zip(before, after):
        c = count_changed_bits(b, a)
        n += c.numel()
        nch += int((c > 0).sum())
        bits += int(c.sum())
        width_bits += c.numel() * FORMATS[b.dtype]["bits"]
    return {
        "n_params": n,
        "n_changed": nch,
        "bits_changed": bits,
        "fraction_params_changed": nch / n,
        "fraction_bits_changed": bits / width_bits,
        "bits_per_changed_param": bits / nch if nch else 0.0,
    }


def ulp(w: torch.Tensor) -> torch.Tensor:
    """Unit in the last place of each element of ``w`` in its own format (float64 result).

    ``ulp(w) = 2**(floor(log2|w|) - p + 1)`` for normal numbers (p = 24 fp32, 8 bf16, 11 fp16)
    and the subnormal spacing ``2**(emin - p + 1)`` below the smallest normal.

    Examples
    --------
    >>> float(ulp(torch.tensor([1.0])))
    1.1920928955078125e-07
    >>> float(ulp(torch.tensor([0.02], dtype=torch.bfloat16)))  # 2**-13
    0.0001220703125
    """
    _check_float("w", w)
    f = FORMATS[w.dtype]
    _, e = torch.frexp(w.double())  # |w| = m 2^e, m in [0.5, 1): floor(log2|w|) = e - 1
    expo = torch.clamp(e.double() - 1, min=f["emin"])
    expo = torch.where(w == 0, torch.full_like(expo, f["emin"]), expo)
    return torch.pow(2.0, expo - f["p"] + 1)


def update_changes_weight(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Round-to-nearest-even prediction of whether ``fl(w + u) != w``.

    Parameters
    ----------
    w : tensor (float32, bfloat16 or float16)
        Stored weights.
    u : tensor, same shape
        The update, any float dtype (it is compared exactly, in float64).

    Returns
    -------
    bool tensor
        True where the stored weight changes.

    Notes
    -----
    Let ``s`` be the spacing of the format next to ``w`` in the direction of ``u``:
    ``s = ulp(w)``, except ``s = ulp(w)/2`` when ``|w|`` is a power of two and ``u`` points
    toward zero. Then ``fl(w + u) = w`` iff ``|u| < s/2``, or ``|u| = s/2`` and the last
    significand bit of ``w`` is even (a tie rounds to even). This is the "swamping" rule of
    round-to-nearest (IEEE 754-2019, Sec. 4.3.1; Higham 2002, Sec. 2.1) behind
    Micikevicius et al. (2018)'s fp32 master weights and Zamirai et al. (2020).

    Examples
    --------
    >>> w = torch.tensor([1.0, 1.0], dtype=torch.bfloat16)   # ulp(1) = 2**-7 in bf16
    >>> update_changes_weight(w, torch.tensor([2.0**-9, 2.0**-7])).tolist()
    [False, True]
    """
    _check_float("w", w)
    if not isinstance(u, torch.Tensor) or u.shape != w.shape:
        raise ValueError(f"u must be a tensor of the shape of w {tuple(w.shape)}")
    wd, ud = w.double(), u.double()
    s = ulp(w)
    m, _ = torch.frexp(wd.abs())
    toward_zero = (torch.sign(ud) * torch.sign(wd)) < 0
    s = torch.where((m == 0.5) & toward_zero, s / 2, s)
    half = s / 2
    odd = (float_bits(w) & 1).bool()
    a = ud.abs()
    return (a > half) | ((a == half) & odd & (a > 0))


def train_tracking_bit_changes(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    lr: float = 0.1,
    batch_size: int = 32,
    n_steps: int = 1000,
    record_every: int = 1,
    seed: int = 0,
    snapshot_steps=(),
    show_progress: bool = True,
) -> dict:
    """Plain SGD with weights *stored* in ``dtype``; record which bits each update changes.

    Parameters
    ----------
    model : nn.Module
        Classifier (cross-entropy on ``y``); it is converted to ``dtype`` in place.
    x, y : tensors
        Training inputs ``(N, ...)`` and integer labels ``(N,)``.
    dtype : {torch.float32, torch.bfloat16, torch.float16}
        Storage (and compute) format of the weights. bf16 here means *pure* bf16 training
        (no fp32 master copy), so round-to-nearest decides whether an update survives.
    lr : float
        Learning rate, > 0.
    batch_size : int
        Minibatch size, drawn with replacement, 1 <= batch_size.
    n_steps : int
        SGD steps, >= 1.
    record_every : int
        Record statistics every this many steps (the update itself is always applied).
    seed : int
        Seed of the minibatch stream.
    snapshot_steps : sequence of int
        Steps *before* which a copy of the parameters (a ``state_dict`` in float32) is kept.
    show_progress : bool
        Progress bar.

    Returns
    -------
    dict of lists (one entry per recorded step)
        ``step``, ``loss`` (minibatch loss before the update, nats; NaN once diverged),
        ``fraction_params_changed``, ``fraction_bits_changed``, ``bits_per_changed_param``,
        ``predicted_fraction_changed`` (from :func:`update_changes_weight` applied to the
        update ``u = -lr g`` rounded to ``dtype``), ``rule_mismatches`` (parameters where the
        rule and the stored result disagree), ``relative_update`` (median ``|u|/|w|``);
        plus ``diverged`` (bool), ``n_params`` and ``snapshots`` ({step: state_dict}).

    Notes
    -----
    The update is ``w <- fl(w + fl(-lr g))`` with ``g`` the minibatch gradient computed in
    ``dtype``; the changed bits are ``popcount(bits(w_old) XOR bits(w_new))``.
    """
    from ..runtime import progress

    if dtype not in FORMATS:
        raise ValueError(f"dtype must be one of {list(FORMATS)}; got {dtype}")
    for name, v in (
        ("batch_size", batch_size),
        ("n_steps", n_steps),
        ("record_every", record_every),
    ):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0; got {lr!r}")
    model = model.to(dtype)
    xd = x.to(dtype)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    keys = (
        "step",
        "loss",
        "fraction_params_changed",
        "fraction_bits_changed",
        "bits_per_changed_param",
        "predicted_fraction_changed",
        "rule_mismatches",
        "relative_update",
    )
    rec = {k: [] for k in keys}
    diverged = False
    snaps = {}
    want = {int(t) for t in snapshot_steps}
    it = range(n_steps)
    if show_progress:
        it = progress(it, total=n_steps, desc=f"SGD {str(dtype).replace('torch.', '')}")
    for t in it:
        if t in want:
            snaps[t] = {
                k: v.detach().float().clone() for k, v in model.state_dict().items()
            }
        idx = torch.randint(x.shape[0], (batch_size,), generator=gen).to(x.device)
        loss = F.cross_entropy(model(xd[idx]).float(), y[idx])
        if not torch.isfinite(loss):
            diverged = True
            break
        grads = torch.autograd.grad(loss, params)
        record = t % record_every == 0
        with torch.no_grad():
            if record:
                before = [p.detach().clone() for p in params]
                updates = [(-lr * g).to(dtype) for g in grads]
                pred = [update_changes_weight(p, u) for p, u in zip(params, updates)]
            for p, g in zip(params, grads):
                p.add_((-lr * g).to(dtype))
        if record:
            st = bit_change_stats(before, [p.detach() for p in params])
            changed = [
                count_changed_bits(b, p.detach()) > 0 for b, p in zip(before, params)
            ]
            n_pred = sum(int(pp.sum()) for pp in pred)
            mism = sum(int((pp != c).sum()) for pp, c in zip(pred, changed))
            rel = torch.cat(
                [
                    (u.double().abs() / b.double().abs().clamp_min(1e-30)).reshape(-1)
                    for u, b in zip(updates, before)
                ]
            )
            rec["step"].append(t)
            rec["loss"].append(float(loss.detach()))
            for k in (
                "fraction_params_changed",
                "fraction_bits_changed",
                "bits_per_changed_param",
            ):
                rec[k].append(st[k])
            rec["predicted_fraction_changed"].append(n_pred / st["n_params"])
            rec["rule_mismatches"].append(mism)
            rec["relative_update"].append(float(rel.median()))
    rec["diverged"] = diverged
    rec["snapshots"] = snaps
    rec["n_params"] = sum(p.numel() for p in params)
    return rec
