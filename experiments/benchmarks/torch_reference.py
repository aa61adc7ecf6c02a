"""A PyTorch eager reference of the fixed language model, for the training-speed benchmark only.

It mirrors ``openevolve_genesys.training.model`` layer for layer (tied embedding/head with
N(0, 1/d) init and the embedding scaled by sqrt(d), sinusoidal positions, pre-LayerNorm blocks
with a fused-QKV causal attention through ``scaled_dot_product_attention``, exact-GELU 4x FFN,
dropout 0.1 on the embedding, the FFN hidden and both residual branches, final LayerNorm; with
the same weights its logits match the JAX model's to 1e-6) and the optimizer of ``training.loop``
(global-norm clipping, then AdamW with the same betas, eps, weight decay and linear warmup). It
is the PyTorch prototype's kind of implementation: eager PyTorch, no torch.compile, float32, and
``nn.Dropout``'s Bernoulli masks where the package hashes element indices (same keep rate and
scaling, a different random stream). PyTorch is a benchmark-only extra
(``pip install .[benchmark]``); nothing in the package imports this file.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from openevolve_genesys.training.model import sinusoidal_positions
from openevolve_genesys.training.profiles import TrainConfig


class TorchAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        # [B, T, 3, H, Dh] -> three [B, H, T, Dh], the layout SDPA wants.
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class TorchBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.norm_mixer = nn.LayerNorm(d_model, eps=1e-5)
        self.mixer = TorchAttention(d_model, n_heads)
        self.norm_ffn = nn.LayerNorm(d_model, eps=1e-5)
        self.up = nn.Linear(d_model, 4 * d_model)
        self.down = nn.Linear(4 * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.mixer(self.norm_mixer(x)))
        h = self.down(self.dropout(F.gelu(self.up(self.norm_ffn(x)), approximate="none")))
        return x + self.dropout(h)


class TorchLanguageModel(nn.Module):
    """Token ids [B, T] -> logits [B, T, vocab], the head tied to the embedding."""

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, n_heads: int, *, dropout: float = 0.1,
                 seq_len: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        self.embed_scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("positions", torch.from_numpy(sinusoidal_positions(seq_len, d_model)))
        self.blocks = nn.ModuleList(TorchBlock(d_model, n_heads, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model, eps=1e-5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embed(tokens) * self.embed_scale) + self.positions[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.embed.weight.T


def make_torch_trainer(
    vocab_size: int, d_model: int, n_layers: int, n_heads: int, train: TrainConfig,
) -> tuple[TorchLanguageModel, Callable[[np.ndarray], torch.Tensor]]:
    """The model and a ``step(tokens[B, T+1]) -> loss`` doing one full optimizer step in eager mode.

    AdamW and clipping run their ``foreach`` implementations: on CPU PyTorch defaults to the
    per-parameter loop, which measured 11 ms against 6 ms per step here (of ~1.3 s), so the
    reference takes the better of its own options.
    """
    torch.manual_seed(train.seed)
    model = TorchLanguageModel(vocab_size, d_model, n_layers, n_heads, dropout=train.dropout, seq_len=train.seq_len)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.learning_rate, betas=(train.beta1, train.beta2),
                                  eps=1e-8, weight_decay=train.weight_decay, foreach=True)
    warmup = max(train.warmup_steps, 1)
    # The same warmup as optax's linear_schedule in training.loop: lr * step / warmup, then flat.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / warmup, 1.0))

    def step(tokens: np.ndarray) -> torch.Tensor:
        batch = torch.from_numpy(tokens).long()
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip, foreach=True)
        optimizer.step()
        scheduler.step()
        return loss.detach()

    return model, step

