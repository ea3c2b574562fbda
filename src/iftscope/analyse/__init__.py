"""Analyse: consistency between base and tuned models, and honest statistics."""
