"""A small Llama-architecture model built from a config (the micro-world's base model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the model: the recipe check imports the config only
    import torch


@dataclass(frozen=True)
class TinyModelConfig:
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    mlp: int = 512
    max_positions: int = 512
    # At this size eager and sdpa attention run within 5% of each other on 2 CPU cores
    # (bench/pretrain_throughput.py: eager/sdpa 0.95-0.98). Switching changes the numbers of a
    # world (and its fingerprint), so the default stays until a change is worth that.
    attention: str = "eager"

    def to_json(self) -> dict:
        return asdict(self)


def build_model(
    cfg: TinyModelConfig, vocab_size: int, bos_id: int, eos_id: int, pad_id: int, seed: int
) -> torch.nn.Module:
    """A randomly initialised LlamaForCausalLM (transformers is imported here: it takes seconds)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden,
        intermediate_size=cfg.mlp,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        attn_implementation=cfg.attention,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
