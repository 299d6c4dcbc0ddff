"""A CrysTens layer holding the Pauling electronegativity of every site."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from pymatgen.core import Element, Species

from crystens_core.layout import site_channel


def pauling_electronegativity(species: Element | Species) -> float:
    """Pauling electronegativity of an element, in Pauling units.

    pymatgen has no Pauling value for some elements (He, Ne, Ar, Og, ...) and
    returns NaN with a warning for them; this function returns 0.0 instead.

    Args:
        species: a pymatgen Element or Species (the oxidation state is ignored).

    Returns:
        χ in Pauling units, or 0.0 if the element has no Pauling value.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value = species.X
    return 0.0 if math.isnan(value) else float(value)


class ElectronegativityLayer:
    """Pauling electronegativity as an extra CrysTens channel.

    The channel holds, in Pauling units:

    * in header slot 0 (row and column, mirrored): χ_i of site i's element;
    * in the pair block: χ_i − χ_j (antisymmetric, zero on the diagonal).

    Elements without a Pauling electronegativity (pymatgen gives NaN for noble
    gases such as He, Ne and Ar) are given χ = 0.0.
    """

    name = "electronegativity"

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (there are none)."""
        return {}

    def channel(self, structure, max_sites: int) -> np.ndarray:
        """The electronegativity channel of one structure.

        Args:
            structure: an ordered pymatgen Structure with at most ``max_sites`` sites.
            max_sites: the encoder's ``max_sites``.

        Returns:
            (S, S) float32 array, S = 12 + max_sites, in Pauling units; zero
            outside the header slot and the pair block of occupied sites.

        Raises:
            ValueError: the structure has more than ``max_sites`` sites.
        """
        chi = np.array([pauling_electronegativity(site.specie) for site in structure], dtype=np.float64)
        return site_channel(chi, chi[:, None] - chi[None, :], max_sites)
