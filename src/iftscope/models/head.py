"""The last step of a causal LM, done so that near-equal options do not tie.

A bf16 model's logits come out of a bf16 head: rounded to 8 significant bits, nearly uniform option
distributions tie exactly and argmax falls on the first option (the paper's bf16 logits tied 11% of
its option distributions). Here the base transformer gives its last hidden states, and only the
positions that are scored are multiplied by the output head in float32: no ties beyond those of the
hidden states themselves, and no batch x length x vocabulary tensor.

Heads that are not a plain linear map (final logit softcapping, a logit scale, a LoRA-tuned head,
prompt-learning adapters, anything that fails a one-time comparison with the model's own logits)
fall back to the model's own logits, cast to float32 afterwards.
"""

from __future__ import annotations

import inspect

import torch

SCALED = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")
VOCAB_CHUNK = 32768  # head rows converted to float32 at a time: 32k x 8192 x 4 bytes = 1 GiB at most


def _cache_kwarg(module) -> str:
    """transformers >= 5.2x names the key/value cache argument `cache`, older ones `past_key_values`."""
    return "cache" if "cache" in inspect.signature(type(module).forward).parameters else "past_key_values"


def _inner(model):
    """The transformers model under a peft wrapper (LoRA layers are injected into it in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _plain_parts(model):
    """(base transformer, linear head) when logits = head(last hidden state) exactly, else None."""
    if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
        return None  # virtual tokens are added by the peft wrapper's forward only
    inner = _inner(model)
    config = getattr(inner, "config", None)
    if any(getattr(config, key, None) not in (None, 1, 1.0) for key in SCALED):
        return None
    if getattr(config, "final_logit_softcapping", None) is not None:
        return None
    try:
        decoder, head = inner.get_decoder(), inner.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if decoder is None or decoder is inner or type(head) is not torch.nn.Linear:
        return None  # a LoRA-tuned head (peft's Linear) or anything else: the model's own logits
    if head.weight.device.type == "meta":
        return None  # offloaded by a device map: its hooks load it for the model's forward only
    return decoder, head


class OutputHead:
    """Hidden states of a batch, then float32 logits of the chosen positions (see module doc)."""

    def __init__(self, model):
        self.model = model
        parts = _plain_parts(model)
        self.decoder, self.linear = parts if parts is not None else (None, None)
        self._kwarg = _cache_kwarg(self.decoder if self.decoder is not None else _inner(model))
        self._checked = self.decoder is None

    @property
    def plain(self) -> bool:
        """True when logits are computed here in float32, False when they are the model's own."""
        return self.decoder is not None

    def prefix_cache(self, prefix: torch.Tensor):
        """The key/value cache of a shared prefix [1, length]."""
        run = self.decoder if self.plain else self.model
        out = run(input_ids=prefix, use_cache=True)
        return getattr(out, "cache", None) or out.past_key_values

    def states(self, ids: torch.Tensor, mask: torch.Tensor, cache=None) -> torch.Tensor:
        """[batch, length, hidden] last hidden states (the model's logits when not plain)."""
        if not self._checked:
            self._verify(ids.device)
        kwargs = {
            "input_ids": ids,
            "attention_mask": mask,
            self._kwarg: cache,
            "use_cache": cache is not None,
        }
        if self.plain:
            return self.decoder(**kwargs).last_hidden_state
        return self.model(**kwargs).logits

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """[n, vocabulary] float32 logits of the chosen rows of `states`."""
        if not self.plain:
            return states.float()
        weight, bias = self.linear.weight, self.linear.bias
        hidden = states.to(weight.device, torch.float32)
        with torch.autocast(device_type=hidden.device.type, enabled=False):  # a training loop's
            parts = [
                hidden @ weight[k : k + VOCAB_CHUNK].float().T for k in range(0, len(weight), VOCAB_CHUNK)
            ]
        logits = torch.cat(parts, dim=1)
        return logits + bias.float() if bias is not None else logits

    @torch.no_grad()
    def _verify(self, device) -> None:
        """Once, on a short input: the model's logits must be its head's output, unchanged (no
        scaling or capping after it), and the head's input the base transformer's last hidden
        state (no scaling before it; compared by norm, as a training loop's autocast may run the
        model in bf16 while the transformer here runs in float32). Otherwise: the model's logits."""
        self._checked = True
        seen = []
        hook = self.linear.register_forward_hook(lambda _m, args, out: seen.append((args[0], out)))
        try:
            ids = torch.arange(1, 9, device=device)[None] % self.linear.weight.shape[0]
            own = self.model(input_ids=ids).logits
        finally:
            hook.remove()
        hidden = self.decoder(input_ids=ids).last_hidden_state.float()
        if seen:
            head_in, head_out = seen[-1][0].float().to(hidden.device), seen[-1][1]
            gap = (head_in - hidden).norm() / head_in.norm().clamp_min(1e-12)
            if torch.equal(head_out.float(), own.float()) and gap < 0.05:
                return
        self.decoder = self.linear = None
        self._kwarg = _cache_kwarg(_inner(self.model))
