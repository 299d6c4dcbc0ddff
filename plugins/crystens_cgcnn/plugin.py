"""Registers the ``cgcnn`` metric (torch is imported only when the metric is created)."""

from crystens_core import hookimpl
from crystens_core.plugins import lazy_factory


@hookimpl
def crystens_register_metrics(register):
    factory = lazy_factory("crystens_cgcnn.metric:CGCNNMetric", requires=("torch", "safetensors"), extra="eval", what="metric 'cgcnn'")
    register("cgcnn", factory, description="K-S statistic of CGCNN-predicted formation energy, band gap, moduli, ... (paper Fig. 7)")
