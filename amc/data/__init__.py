"""Datasets by name with train / search-val / test splits (see amc.data.registry)."""

from amc.data.batches import augment_batch, iterate_batches
from amc.data.registry import DataBundle, DatasetInfo, list_datasets, load_dataset

__all__ = ["DataBundle", "DatasetInfo", "augment_batch", "iterate_batches", "list_datasets", "load_dataset"]
