"""Model access: the micro-world's tokenizer and tiny Llama, pretraining, and recall checks."""
