"""Load any Hugging Face causal LM (local folder or hub id) with its tokenizer, safely, and the few
facts about a loaded model that every caller needs: where its inputs go and how long its context is.
"""

from __future__ import annotations

from pathlib import Path

import torch

from iftscope.models import DTYPE_NAMES

DTYPES = dict(zip(DTYPE_NAMES, (torch.float32, torch.bfloat16, torch.float16, "auto"), strict=True))
MAPPED = "map"  # device value: accelerate's big-model inference, the model spread over every GPU
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def load_model(
    name_or_path: str | Path,
    dtype: str = "float32",
    device: str = "auto",
    adapter: str | Path | None = None,
    trust_remote_code: bool = False,
):
    """(model, tokenizer) in eval mode; safetensors weights only; an optional PEFT adapter.

    `device="auto"`: the first GPU when there is one, else the CPU. `device="map"`: a model too large
    for one GPU is loaded with `device_map="auto"` (accelerate places its layers over the GPUs, then
    CPU memory) and never moved as a whole; its inputs go where `input_device` says. Any other value
    is a torch device ("cpu", "cuda:1")."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    source = str(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    placement = {"device_map": "auto"} if device == MAPPED else {}
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=DTYPES[dtype], use_safetensors=True, trust_remote_code=trust_remote_code, **placement
    )
    if adapter is not None:
        try:
            from peft import PeftModel
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("loading an adapter needs peft: pip install peft") from e
        model = PeftModel.from_pretrained(model, str(adapter))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device != MAPPED:
        model = model.to(resolve_device(device))
    return model.eval(), tokenizer


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def input_device(model) -> torch.device:
    """Where input ids go: the device of the input embeddings (with a device map, the first layer's
    GPU; `next(model.parameters())` need not be that one)."""
    embeddings = model.get_input_embeddings()
    if embeddings.weight.device.type != "meta":
        return embeddings.weight.device
    hook = getattr(embeddings, "_hf_hook", None)  # offloaded: accelerate loads it where it runs
    return torch.device(getattr(hook, "execution_device", None) or "cpu")


def context_limit(model, tokenizer) -> int | None:
    """The longest sequence the model was built for: its config's position count, else the
    tokenizer's model_max_length (unless that is transformers' 'no limit' placeholder)."""
    config = getattr(model, "config", None)
    for key in CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**9 else None


def check_length(ids: list[int], limit: int | None, tokenizer, room: int = 0) -> None:
    """ValueError, before any forward pass, when `ids` (plus `room` tokens to generate) do not fit
    the context: the length, the limit and the start of the prompt, instead of an index error or
    silently meaningless positions deep inside a batch."""
    if limit is None or len(ids) + room <= limit:
        return
    start = tokenizer.decode(ids[:40])
    need = f"{len(ids)} tokens" + (f" (+{room} to generate)" if room else "")
    raise ValueError(f"a prompt of {need} exceeds the model's context of {limit} tokens: {start[:120]!r}...")


def pad_token_id(tokenizer) -> int:
    """The id that fills padded positions: the tokenizer's pad token, else EOS (what `load_model`
    sets when a tokenizer has none), else 0. Padded positions are always masked out, so the choice
    changes no result; one rule keeps every batch builder the same."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
