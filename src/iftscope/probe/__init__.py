"""Probe what a base model already knows: k-shot multiple-choice scoring, debiased."""
