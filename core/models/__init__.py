"""Recommendation models: the popularity baseline, the LM teacher and the small student."""
