"""Proxy-tuning (Liu et al. 2024, "Tuning Language Models by Proxy"): a larger base model M steered
at every position by the difference a small tuned model makes to its own base,

    logits = M + alpha * (m_tuned - m)

without training M. `ProxyModel` is a torch module whose forward returns those logits (float32),
so `HFScorer` scores through it unchanged (option log-likelihoods, letters: every metric applies)
and `generate` decodes greedily from the same arithmetic (`generate_batched` calls it as it calls a
transformers model). The three models must share a tokenizer (checked: the same vocabulary size).

Positions follow the attention mask (left padding in generation, a shared prefix's key/value cache
in scoring), as transformers' own generation computes them; the three caches travel together in
one `ProxyCache`.
"""

from __future__ import annotations

import inspect

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

from iftscope.models.load import input_device


class ProxyCache:
    """The key/value caches of M, m and m_tuned, kept and repeated together."""

    def __init__(self, caches: tuple):
        self.caches = caches

    def batch_repeat_interleave(self, repeats: int) -> None:
        for cache in self.caches:
            cache.batch_repeat_interleave(repeats)


def _cache_name(model) -> str:
    """transformers >= 5.2x names the cache argument `cache`, older ones `past_key_values`."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(inner).forward).parameters else "past_key_values"


_OUT_CACHE = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def _cache_of(output):
    """A model output's key/value cache, under either of transformers' names for it."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def positions(mask: torch.Tensor, length: int) -> torch.Tensor:
    """Position ids of the last `length` tokens: count of real tokens before each (left padding and
    cached prefixes included), as transformers' generation computes them."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:]


class ProxyModel(torch.nn.Module):
    """M steered by (m_tuned - m); see the module doc. `small_tuned` may be a peft model over its
    own copy of the small base (`small_base` must then be a separate, untuned copy)."""

    def __init__(self, large, small_base, small_tuned, alpha: float = 1.0):
        super().__init__()
        sizes = {m.get_output_embeddings().weight.shape[0] for m in (large, small_base, small_tuned)}
        if len(sizes) != 1:
            raise ValueError(f"proxy-tuning needs one vocabulary for all three models; sizes {sorted(sizes)}")
        self.large, self.small_base, self.small_tuned, self.alpha = large, small_base, small_tuned, alpha
        self.config = large.config
        self._names = tuple(_cache_name(m) for m in self.parts)

    @property
    def parts(self) -> tuple:
        return (self.large, self.small_base, self.small_tuned)

    def get_input_embeddings(self):
        return self.large.get_input_embeddings()

    def forward(
        self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=False, **kwargs
    ):
        """Combined float32 logits [batch, length, vocabulary] (and the caches with use_cache)."""
        cache = cache if cache is not None else kwargs.get("past_key_values")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = positions(attention_mask, input_ids.shape[1])
        outs = []
        for k, (model, name) in enumerate(zip(self.parts, self._names, strict=True)):
            dev = input_device(model)  # the three may sit on different devices (a device map)
            outs.append(
                model(
                    input_ids=input_ids.to(dev),
                    attention_mask=attention_mask.to(dev),
                    position_ids=position_ids.to(dev),
                    use_cache=use_cache,
                    **{name: cache.caches[k] if cache is not None else None},
                )  # fmt: skip
            )
        logits = outs[0].logits.float()
        if self.alpha:
            small, tuned = (o.logits.to(logits.device, torch.float32) for o in outs[1:])
            logits = logits + self.alpha * (tuned - small)
        new_cache = None
        if use_cache:
            new_cache = ProxyCache(tuple(_cache_of(o) for o in outs))
        return CausalLMOutputWithPast(logits=logits, **{_OUT_CACHE: new_cache})

    @torch.no_grad()
    def generate(
        self, input_ids, attention_mask=None, max_new_tokens: int = 16, pad_token_id: int = 0,
        eos_token_id: int | None = None, do_sample: bool = False, **unused,
    ) -> torch.Tensor:  # fmt: skip
        """Greedy decoding from the combined logits: the prompt followed by the new tokens, a row
        padded with `pad_token_id` after its EOS (as transformers' generate returns them)."""
        if do_sample:
            raise ValueError("proxy-tuned decoding is greedy here (do_sample=False)")
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        ids, done, cache, step_ids = input_ids, torch.zeros(len(input_ids), dtype=torch.bool), None, input_ids
        done = done.to(input_ids.device)
        for _ in range(max_new_tokens):
            out = self(step_ids, attention_mask=mask, use_cache=True, cache=cache)
            cache = _cache_of(out)
            nxt = out.logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, pad_token_id), nxt)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(nxt)[:, None]], dim=1)
            if eos_token_id is not None:
                done = done | (nxt == eos_token_id)
            if bool(done.all()):
                break
            step_ids = nxt[:, None]
        return ids


def load_proxy(large_spec, small_spec, adapter: str, alpha: float):
    """(ProxyModel, tokenizer) from ModelSpec-like values: M, m, and the folder of m's tuning (a
    peft adapter or a full model). The tokenizer is m's; M's must encode text the same way."""
    large, large_tok = large_spec.load()
    small_base, tok = small_spec.load()
    tuned, _ = small_spec.tuned(adapter).load()
    probe = "The quick brown fox"
    if large_tok(probe)["input_ids"] != tok(probe)["input_ids"]:
        raise ValueError(f"{large_spec.path} and {small_spec.path} do not share a tokenizer (proxy-tuning)")
    return ProxyModel(large, small_base, tuned, alpha).eval(), tok
