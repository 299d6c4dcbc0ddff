"""Every built-in component passes the conformance suite it ships for third parties."""

from crystens_core import get_decoder, get_encoder, get_metric
from crystens_core.testing import parametrize_with_checks


@parametrize_with_checks(
    [
        get_encoder("crystens"),
        get_encoder("crystens", distance="fractional", max_sites=60),
        get_decoder("auto"),
        get_decoder("paper"),
        get_metric("self-consistency"),
    ]
)
def test_conformance(component, check):
    check(component)
