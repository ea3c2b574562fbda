"""Load any Hugging Face causal LM (local folder or hub id) with its tokenizer, safely."""

from __future__ import annotations

from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def load_model(
    name_or_path: str | Path,
    dtype: str = "float32",
    device: str = "auto",
    adapter: str | Path | None = None,
    trust_remote_code: bool = False,
):
    """(model, tokenizer) in eval mode; safetensors weights only; an optional PEFT adapter.
    `device="auto"`: the first GPU when there is one, else the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    source = str(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=DTYPES[dtype], use_safetensors=True, trust_remote_code=trust_remote_code
    )
    if adapter is not None:
        try:
            from peft import PeftModel
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("loading an adapter needs peft: pip install peft") from e
        model = PeftModel.from_pretrained(model, str(adapter))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(resolve_device(device)).eval(), tokenizer


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pad_token_id(tokenizer) -> int:
    """The id that fills padded positions: the tokenizer's pad token, else EOS (what `load_model`
    sets when a tokenizer has none), else 0. Padded positions are always masked out, so the choice
    changes no result; one rule keeps every batch builder the same."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
