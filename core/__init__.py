"""kdrec core: settings, datasets, models, training, distillation, evaluation, index.

This layer imports nothing else of kdrec.
"""
