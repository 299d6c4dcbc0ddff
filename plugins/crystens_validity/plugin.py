"""Registers the validity metric (SMACT is imported only when the metric is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_metrics(register):
    register(
        "validity",
        lazy_factory("crystens_validity.metric:ValidityMetric", requires=("smact",), extra="eval", what="the validity metric"),
        description="CDVAE validity: all distances ≥ 0.5 Å (periodic images included), volume ≥ 0.1 Å³, SMACT charge balance",
    )
