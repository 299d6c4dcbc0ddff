"""Registers the K-S metric."""

from crystens_core import hookimpl


@hookimpl
def crystens_register_metrics(register):
    from crystens_ks.metric import KSMetric

    register("ks", KSMetric, description="Two-sample K-S statistic of a, b, c, α, β, γ, space group, Z, density, number of elements")
