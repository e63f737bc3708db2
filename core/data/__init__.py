"""Datasets: the in-memory type, loaders for each on-disk format, splits and filtering."""

from core.data.dataset import Dataset, Item
from core.data.errors import DataFormatError
from core.data.split import LeaveOneOut, leave_one_out

__all__ = ["DataFormatError", "Dataset", "Item", "LeaveOneOut", "leave_one_out"]
