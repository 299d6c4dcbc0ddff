"""crystens: a plugin framework for crystal generation on the CrysTens representation.

The core is small and imports no deep-learning library. Components come from
plugins (entry-point group ``crystens``)::

    from crystens_core import get_encoder, get_decoder
    encoder = get_encoder("crystens", max_sites=52)
    decoder = get_decoder("auto")

``get_component(kind, name, **config)`` creates a component of any kind (one
per ``crystens_register_<kind>s`` hook spec); ``get_encoder`` and the other
``get_<kind>`` functions are shorthands for it.
"""

from crystens_core.errors import (
    CrystensError,
    DatasetError,
    EncodingError,
    MissingDependencyError,
    UnknownComponentError,
)
from crystens_core.hookspecs import hookimpl, hookspec
from crystens_core.plugins import (
    get_component,
    get_decoder,
    get_encoder,
    get_generator,
    get_layer,
    get_metric,
    list_components,
    load_plugins,
)
from crystens_core.protocols import Generator
from crystens_core.results import DecodeResult

__version__ = "0.1.0"

__all__ = [
    "CrystensError",
    "DatasetError",
    "DecodeResult",
    "EncodingError",
    "Generator",
    "MissingDependencyError",
    "UnknownComponentError",
    "__version__",
    "get_component",
    "get_decoder",
    "get_encoder",
    "get_generator",
    "get_layer",
    "get_metric",
    "hookimpl",
    "hookspec",
    "list_components",
    "load_plugins",
]
