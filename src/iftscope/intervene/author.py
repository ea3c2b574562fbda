"""The base model as the author of its own IFT questions (intervene.written's `Author`).

Writing is seeded sampling through the package's one generation loop (models.generate), with every
sampling knob set here rather than taken from the model's generation_config (intervene.explain);
answering is the probe's own reading (probe.knowledge.probe: the study's probe format, shots and
demonstration pool), so a written question is answered exactly as the probe reads the pool's.
"""

from __future__ import annotations

from collections.abc import Sequence

from iftscope.intervene.explain import sampling_settings
from iftscope.intervene.written import Author
from iftscope.models.generate import generate_batched
from iftscope.probe.knowledge import ProbeConfig
from iftscope.types import Question


def model_author(
    model, tokenizer, probe_cfg: ProbeConfig, pool: Sequence[Question], forbidden: Sequence[str] = (), *,
    max_new_tokens: int = 160, temperature: float = 1.0, batch_size: int = 32,
) -> Author:  # fmt: skip
    """An Author over a loaded causal LM: `write` samples at `temperature` (seeded per round),
    `answer` reads each question with the probe's format and demonstrations from `pool`."""
    settings = sampling_settings(temperature)
    eos = tokenizer.eos_token_id

    def write(prompts: list[str], seed: int) -> list[tuple[str, bool]]:
        ids = [tokenizer(p)["input_ids"] for p in prompts]
        rows = generate_batched(model, tokenizer, ids, max_new_tokens, batch_size, seed=seed, **settings)
        out = []
        for row in rows:
            ended = eos is not None and eos in row
            row = row[: row.index(eos)] if ended else row
            out.append((tokenizer.decode(row, skip_special_tokens=True), ended))
        return out

    def answer(questions: list[Question]) -> list[Sequence[float]]:
        from iftscope.models.scorer import HFScorer
        from iftscope.probe.formats import get_format
        from iftscope.probe.knowledge import probe

        fmt = get_format(probe_cfg.format).with_tokenizer(tokenizer)
        scorer = HFScorer(model, tokenizer, batch_size=batch_size)
        return [r.distribution for r in probe(scorer, questions, list(pool) or questions, fmt, probe_cfg)]

    return Author(write, answer, tuple(forbidden))
