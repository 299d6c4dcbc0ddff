"""The paper's self-consistency figures (built-in plugin, metric name ``self-consistency``)."""

from crystens_self_consistency.metric import SelfConsistencyMetric

__all__ = ["SelfConsistencyMetric"]
