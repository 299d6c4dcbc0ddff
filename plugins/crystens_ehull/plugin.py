"""Registers the ``ehull`` metric (chgnet, matgl and torch load only when an energy model is used)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_metrics(register):
    factory = lazy_factory("crystens_ehull.metric:EHullMetric", what="metric 'ehull'")
    register("ehull", factory, description="Energy above the convex hull of Materials Project phases from CHGNet / M3GNet / CGCNN energies (paper Fig. 8)")
