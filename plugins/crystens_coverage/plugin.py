"""Registers the coverage metric (matminer is imported only when the metric is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_metrics(register):
    register(
        "coverage",
        lazy_factory("crystens_coverage.metric:CoverageMetric", requires=("matminer",), extra="eval", what="the coverage metric"),
        description="CDVAE coverage COV-R/COV-P (CrystalNN and magpie fingerprints) and Wasserstein distances of density and number of elements",
    )
