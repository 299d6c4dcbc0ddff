"""crystens-chemistry: chemical layers for the CrysTens tensor."""

__version__ = "0.1.0"
