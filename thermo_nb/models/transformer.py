"""A tiny decoder-only transformer language model, for counting FLOPs per token.

The attention is written with explicit matrix products (no fused kernel) so that
:class:`torch.utils.flop_counter.FlopCounterMode` sees every multiply-add, including the
``QK^T`` and ``AV`` products that Kaplan et al. (2020, Table 1) count separately from the
``2N`` FLOPs per token of the weight matrices.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["TinyTransformerLM", "count_parameters"]


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, h, dh).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(dh)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyTransformerLM(nn.Module):
    """Decoder-only (GPT-style, pre-LayerNorm) transformer language model.

    Parameters
    ----------
    vocab_size : int
        Tokens in the vocabulary, >= 2.
    d_model : int
        Width, a multiple of ``n_heads``.
    n_layers : int
        Transformer blocks, >= 1.
    n_heads : int
        Attention heads, >= 1.
    context : int
        Maximum sequence length (learned position embeddings), >= 1.
    d_ff : int, optional
        Hidden width of the MLP; ``4 * d_model`` by default.

    Notes
    -----
    Per token, the forward pass costs about ``2 N_nonemb + 2 n_layers n_ctx d_model`` FLOPs
    (Kaplan et al. 2020, arXiv 2001.08361, Table 1) plus ``2 d_model vocab`` for the (untied)
    output layer; the embedding look-ups cost no multiply-adds. The backward pass costs
    twice the forward matrix products, except that no gradient is propagated into the token
    ids, so the total is close to ``6 N`` only when the embeddings are a small part of N and
    ``n_ctx`` is small compared with ``d_model``.

    Examples
    --------
    >>> lm = TinyTransformerLM(vocab_size=64, d_model=32, n_layers=2, n_heads=4, context=16)
    >>> lm(torch.zeros(3, 16, dtype=torch.long)).shape
    torch.Size([3, 16, 64])
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        context: int,
        d_ff: int | None = None,
    ):
        super().__init__()
        for name, v, low in (
            ("vocab_size", vocab_size, 2),
            ("d_model", d_model, 1),
            ("n_layers", n_layers, 1),
            ("n_heads", n_heads, 1),
            ("context", context, 1),
        ):
            if not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}; got {v!r}")
        if d_model % n_heads:
            raise ValueError(
                f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})"
            )
        self.context = context
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(
            _Block(d_model, n_heads, d_ff or 4 * d_model) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, t, vocab_size)`` for token ids ``idx`` (batch, t)."""
        if idx.ndim != 2 or idx.shape[1] > self.context:
            raise ValueError(
                f"idx must have shape (batch, t <= {self.context}); "
                f"got {tuple(idx.shape)}"
            )
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


def count_parameters(model: nn.Module, *, exclude_embeddings: bool = False) -> int:
    """Number of trainable parameters; ``exclude_embeddings`` drops ``nn.Embedding`` tables
    (Kaplan et al.'s non-embedding count; Chinchilla counts all parameters)."""
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if exclude_embeddings:
        n -= sum(
            m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding)
        )
    return n
