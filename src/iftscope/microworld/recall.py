"""Ground truth after pretraining: does the model complete a fact with its true value?"""

from __future__ import annotations

from collections.abc import Sequence

from iftscope.microworld.generator import FactPrompt


def greedy_next_words(model, tokenizer, prompts: Sequence[str], batch_size: int = 256) -> list[int]:
    """Greedy next-token id after each prompt (BOS added as the tokenizer does by default)."""
    import torch  # here: the recipe check imports this package's configs, not torch

    with torch.no_grad():
        return _greedy(model, tokenizer, prompts, batch_size)


def _greedy(model, tokenizer, prompts: Sequence[str], batch_size: int) -> list[int]:
    import torch

    model.eval()
    out: list[int] = []
    for start in range(0, len(prompts), batch_size):
        enc = tokenizer(
            list(prompts[start : start + batch_size]), padding=True, padding_side="right", return_tensors="pt"
        )
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        last = enc["attention_mask"].sum(dim=1) - 1
        out += logits[torch.arange(len(last)), last].argmax(dim=-1).tolist()
    return out


def recall(model, tokenizer, facts: Sequence[FactPrompt], batch_size: int = 256) -> list[bool]:
    """Per fact: is the greedy next word the true value?"""
    predicted = greedy_next_words(model, tokenizer, [f.prompt for f in facts], batch_size)
    gold = tokenizer.convert_tokens_to_ids([f.value for f in facts])
    return [p == g for p, g in zip(predicted, gold, strict=True)]


def recall_summary(facts: Sequence[FactPrompt], hits: Sequence[bool]) -> dict[str, float]:
    """Recall of known and unknown people's facts, overall and per attribute."""
    summary: dict[str, float] = {}
    for label, known in (("known", True), ("unknown", False)):
        sel = [h for h, f in zip(hits, facts, strict=True) if f.known == known]
        summary[label] = sum(sel) / len(sel) if sel else float("nan")
        for attr in sorted({f.attribute for f in facts}):
            s = [h for h, f in zip(hits, facts, strict=True) if f.known == known and f.attribute == attr]
            if s:
                summary[f"{label}.{attr}"] = sum(s) / len(s)
    return summary
