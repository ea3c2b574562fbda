"""Train: supervised fine-tuning with the same budget per group (LoRA or full)."""
