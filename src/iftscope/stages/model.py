"""Which model a stage reads, as a value: a folder or hub id, an optional adapter, dtype, device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    """A model to load; `adapter` is a PEFT adapter folder (or None for the model as it is).

    `device`: "auto" (the first GPU, else the CPU), a torch device ("cpu", "cuda:1"), or "map" for
    a model that does not fit one GPU: accelerate's big-model inference (`device_map="auto"`) spreads
    its layers over every visible GPU, then CPU memory, and scoring and generation follow it."""

    path: str
    adapter: str | None = None
    dtype: str = "float32"
    device: str = "auto"

    def load(self):
        """(model, tokenizer) in eval mode, safetensors only."""
        from iftscope.models.load import load_model

        return load_model(self.path, dtype=self.dtype, device=self.device, adapter=self.adapter)

    def scorer(self, batch_size: int):
        """An HFScorer over the loaded model."""
        from iftscope.models.scorer import HFScorer

        model, tokenizer = self.load()
        return HFScorer(model, tokenizer, batch_size=batch_size)

    def with_adapter(self, adapter: str | Path | None) -> ModelSpec:
        return ModelSpec(self.path, str(adapter) if adapter else None, self.dtype, self.device)

    def tuned(self, folder: str | Path) -> ModelSpec:
        """The model a training wrote to `folder`: a PEFT adapter on this base (LoRA), or a whole
        model of its own (full fine-tuning), read in this spec's dtype and device."""
        folder = Path(folder)
        if (folder / "adapter_config.json").exists():
            return self.with_adapter(folder)
        if (folder / "config.json").exists():
            return ModelSpec(str(folder), None, self.dtype, self.device)
        raise FileNotFoundError(
            f"{folder}: neither a PEFT adapter nor a model (no adapter_config.json, config.json)"
        )
