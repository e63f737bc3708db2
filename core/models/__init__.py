"""Recommendation models: the popularity baseline, the LM teacher and the small student.

Teacher and student share one contract (core.models.base.SequenceModel): ``encode``,
``item_embeddings``, ``score`` and ``loss``; ``ModelScorer`` adapts either to core.evaluation,
and core.models.artifacts saves and loads them without pickle.
"""
