"""The `proxy` study condition's settings (recipe block `proxy:`), apart from models.proxy (torch,
transformers) so that reading and checking a recipe imports neither."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyConfig:
    """The `proxy` study condition (recipe block `proxy:`)."""

    alpha: float = 1.0  # logits = M + alpha * (m_tuned - m); 0 gives M's own scores
    group: str = "H"  # the group the small model is tuned on (and M, for the direct comparison)
    model: str | None = (
        None  # real data: the larger base M (same tokenizer); None: the micro-world's large model
    )
