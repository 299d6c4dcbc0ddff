"""Crystal datasets: CSV/CSV.gz files with a ``cif`` column, folders of CIFs, named sets."""

from crystens_core.data.dataset import CrystalDataset, SkipReport, load_dataset, parse_cif
from crystens_core.data.sources import DATASETS, DatasetSpec, data_dir, fetch, resolve

__all__ = [
    "DATASETS",
    "CrystalDataset",
    "DatasetSpec",
    "SkipReport",
    "data_dir",
    "fetch",
    "load_dataset",
    "parse_cif",
    "resolve",
]
