"""Evaluate: zero-shot QA of base and tuned models on named test sets."""
