"""FAISS item index (exact inner product by default, HNSW optional), seen-item exclusion,
save/load next to a model version, and session -> vector -> top-K for any session encoder."""

from core.index.item_index import ItemIndex, SearchResult
from core.index.session import SessionEncoder, SessionRecommender, left_pad
from core.index.storage import IndexFileError, load_index, save_index

__all__ = [
    "IndexFileError",
    "ItemIndex",
    "SearchResult",
    "SessionEncoder",
    "SessionRecommender",
    "left_pad",
    "load_index",
    "save_index",
]
