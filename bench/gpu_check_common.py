"""What every stage of bench/gpu_check.py shares: sizes, the real tokenizer, random models, the
questions, and the measurements (time, tokens through the model, FLOP/s against the measured
matmul peak, peak memory).

The tokenizer is Llama-2 / Mistral-7B-v0.1's SentencePiece (`tokenizer.model.v1`, 32k) from the
mistral-common wheel, loaded as transformers converts it (the lines of tests/realmodels.py's
`sp-converted`), or from `--tokenizer-model FILE` where the wheel is not installed.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

LLAMA2_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32}
LLAMA2_7B |= {"num_attention_heads": 32, "num_key_value_heads": 32}
ONE_B = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22}  # TinyLlama's 1.1B
ONE_B |= {"num_attention_heads": 32, "num_key_value_heads": 4}
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
TINY |= {"num_attention_heads": 4, "num_key_value_heads": 2}


@dataclass(frozen=True)
class Sizes:
    """How big each stage is: the issue's sizes on a GPU, toy ones for `--tiny` on a CPU."""

    small: dict  # the "1B" model's shape
    large: dict  # the "7B" model's shape
    dtype: str  # the models' weights
    matmul: int  # n of the n x n x n reference matmul
    correctness_questions: int = 256
    generation_prompts: int = 32
    new_tokens: int = 16
    probe_questions: int = 1000
    probe_batches: tuple[int, ...] = (8, 64)
    lm_eval_questions: int = 500
    sft_batch: int = 256
    sft_micro: int = 16
    sft_steps: int = 3
    sft_examples: int = 1024
    multi_batch: int = 16  # stage 7: each of the six adapters' global batch ...
    multi_micro: int = 4  # ... in micro-batches of this many (x 6 per pass together)
    max_length: int = 512
    smoke_ift: int = 200
    smoke_timeout: int = 240
    smoke_groups: str = "H,I"  # the study's primary contrast
    smoke_tests: int = 64


GPU = Sizes(ONE_B, LLAMA2_7B, "bfloat16", 8192)
CPU_TINY = Sizes(
    TINY, {**TINY, "hidden_size": 128, "intermediate_size": 256}, "float32", 1024,
    correctness_questions=8, generation_prompts=4, new_tokens=4, probe_questions=16, probe_batches=(2, 8),
    lm_eval_questions=8, sft_batch=8, sft_micro=4, sft_steps=2, sft_examples=16, max_length=256,
    multi_batch=4, multi_micro=2,
    smoke_ift=40, smoke_timeout=300, smoke_groups="H", smoke_tests=16,
)  # fmt: skip


def sync() -> None:
    """Wait for the GPU's queued work, so a wall-clock time covers it (nothing on a CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_memory() -> None:
    """Free what the last stage left and restart the GPU's peak-memory count."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict:
    """Peak GPU memory since the last reset_memory (GiB), else the process's peak RSS."""
    if torch.cuda.is_available():
        return {"peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    return {"peak_rss_gib_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def matmul_peak(n: int, reps: int = 10) -> dict:
    """The reference peak: TFLOP/s of an n x n x n matmul, bf16 on a GPU, fp32 on the CPU (mean of
    `reps` timed products after three warm-ups, random data)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync()
    seconds = (time.perf_counter() - t0) / reps
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "device": device,
        "tflops": 2 * n**3 / seconds / 1e12,
    }


class TokenCounter:
    """Counts the token positions (padding included) entering a model's input embeddings, so a
    stage's FLOP/s is that of the work the model really did (prefix reuse does less of it)."""

    def __init__(self, model):
        self.tokens = 0
        self.handle = model.get_input_embeddings().register_forward_pre_hook(self._count)

    def _count(self, _module, args):
        self.tokens += args[0].numel()

    def close(self) -> None:
        self.handle.remove()


def matmul_params(model, head: bool = True) -> int:
    """Parameters that multiply every token: all but the input embeddings; the output head only
    with `head` (training applies it at every position, the scorer only at the scored ones)."""
    skip = {id(model.get_input_embeddings().weight)}
    if not head:
        skip.add(id(model.get_output_embeddings().weight))
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def rate(tokens: int, seconds: float, flops_per_token: float, peak: dict) -> dict:
    """tokens/s, achieved TFLOP/s (flops_per_token x tokens / s) and its fraction of the peak."""
    tflops = flops_per_token * tokens / seconds / 1e12 if seconds else float("nan")
    return {
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        "tflops": round(tflops, 3),
        "fraction_of_matmul_peak": round(tflops / peak["tflops"], 4),
    }


def tokenizer_folder(folder: Path, model_file: Path | None = None):
    """Write the real SentencePiece v1 tokenizer into `folder` (as tests/realmodels.py's
    sp-converted) and load it back with AutoTokenizer."""
    from transformers import AutoTokenizer

    if model_file is None:
        import mistral_common  # the test extra; travels to the GPU as a wheel (docs/gpu-check.md)

        model_file = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, folder / "tokenizer.model")
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
    }
    config |= {"add_bos_token": True, "add_eos_token": False}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
        tok.save_pretrained(folder)
    if len(tok("Answer: C")["input_ids"]) < 3:  # transformers 5's vocab_file trap: "<s>" alone
        raise RuntimeError(f"the tokenizer in {folder} encodes text as BOS alone")
    return tok


def random_llama(shape: dict, tok, dtype: str, device: str, seed: int = 0):
    """A random-initialised Llama of `shape` with the tokenizer's vocabulary, built in place on
    `device` in `dtype` (a 7B model never passes through CPU memory)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        "llama", vocab_size=len(tok), max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **shape,
    )  # fmt: skip
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    return model.eval()


def questions(data: Path | None, n: int, split: str = "test"):
    """(questions, demonstration pool): Xiezhi's engineering files when `data` holds them (repeated
    to n), else synthetic Xiezhi-style ones (a sentence with a blank, four options)."""
    from iftscope.data import load_questions
    from iftscope.types import Question

    if data is not None and (data / "engineering" / f"{split}.jsonl").exists():
        test = load_questions(data / "engineering" / f"{split}.jsonl")
        pool = load_questions(data / "engineering" / "dev.jsonl")
        reps = [Question(f"{q.id}-{i}", q.question, q.choices, q.answer, q.explanation, q.domain)
                for i in range(-(-n // len(test))) for q in test]  # fmt: skip
        return reps[:n], pool
    words = "power engine bridge circuit steel cement turbine signal voltage gear pump valve".split()

    def make(i: int) -> Question:
        w = [words[(i * 7 + k) % len(words)] for k in range(6)]
        text = f"In engineering, the {w[0]} of a {w[1]} that drives the {w[2]} is mainly set by its _____."
        return Question(f"s{i}", text, tuple(f"the {x} rating" for x in w[2:6]), i % 4, None, "engineering")

    return [make(i) for i in range(10, 10 + n)], [make(i) for i in range(10)]


@dataclass(frozen=True)
class Context:
    """What the stages are given: sizes, device, the measured peak, where the tokenizer and the
    saved small model are, the question data (None: synthetic) and a scratch folder."""

    sizes: Sizes
    device: str
    peak: dict
    tokenizer: Path
    small_model: Path
    data: Path | None
    work: Path

    def tok(self):
        """The real tokenizer, loaded afresh (stages may change its padding side)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.tokenizer)

    def load_small(self, dtype: str | None = None):
        """The saved small model, on the device, in `dtype` (default the sizes' dtype)."""
        from transformers import AutoModelForCausalLM

        dtype = dtype or self.sizes.dtype
        model = AutoModelForCausalLM.from_pretrained(self.small_model, dtype=getattr(torch, dtype))
        return model.to(self.device).eval()
