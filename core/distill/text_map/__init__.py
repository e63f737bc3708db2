"""Text -> student-space map: item vectors for items nobody has clicked yet (cold start).

A linear map from an item's LM text encoding to the student's item space, fitted on the items
the student has seen (``fit.py``: ridge regression, optionally trained further to rank), saved
with the student (``artifact.py``) and applied to every new item's text at serving time.
"""

from core.distill.text_map.artifact import TEXT_MAP_FILE, TextMap, load_text_map
from core.distill.text_map.fit import fit_text_map
from core.distill.text_map.ridge import fit_ridge

__all__ = ["TEXT_MAP_FILE", "TextMap", "fit_ridge", "fit_text_map", "load_text_map"]
