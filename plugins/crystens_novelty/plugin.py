"""Registers the uniqueness and novelty metrics (pymatgen only, a core dependency)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_metrics(register):
    register(
        "uniqueness",
        lazy_factory("crystens_novelty.metric:UniquenessMetric"),
        description="Share of generated structures that match no earlier generated one (StructureMatcher, grouped by composition)",
    )
    register(
        "novelty",
        lazy_factory("crystens_novelty.metric:NoveltyMetric"),
        description="Share of generated structures that match no reference structure (StructureMatcher, grouped by composition)",
    )
