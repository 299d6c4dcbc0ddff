"""Registers the self-consistency metric."""

from crystens_core import hookimpl


@hookimpl
def crystens_register_metrics(register):
    from crystens_self_consistency.metric import SelfConsistencyMetric

    register("self-consistency", SelfConsistencyMetric, description="Tables 1 and 2 of the paper: variances of repeated copies, ΔCoordinate/atom, ΣPairwise/atom")
