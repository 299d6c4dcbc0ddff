"""Registers the chemistry layers with crystens.

Plugin modules import only the core at import time; the layer itself (and
pymatgen) is imported when the hook runs.
"""

from crystens_core import hookimpl


@hookimpl
def crystens_register_layers(register):
    from crystens_chemistry.electronegativity import ElectronegativityLayer

    register(
        "electronegativity",
        ElectronegativityLayer,
        description="Pauling electronegativity χ_i per site and χ_i − χ_j per pair (Pauling units)",
    )
