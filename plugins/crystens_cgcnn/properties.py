"""The seven regression properties of the pretrained CGCNN models and where their weights live.

Pure data (no torch): the metric, the converter and ``predict`` share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Folder of the converted weights shipped with the package.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Per-element feature vectors (92 numbers each, Z = 1..100) of Xie & Grossman.
ATOM_INIT_NAME = "atom_init.json"
FORMAT = "crystens.cgcnn"


@dataclass(frozen=True)
class CGCNNProperty:
    """One pretrained regression model.

    Attributes:
        name: crystens name (``predict`` keys, metric names).
        source: stem of the original ``<source>.pth.tar`` file of Xie & Grossman.
        units: units of the value the model predicts (after the stored normaliser).
        description: what the model was trained on (Materials Project, 2017-04-19 snapshot).
    """

    name: str
    source: str
    units: str
    description: str


PROPERTIES: dict[str, CGCNNProperty] = {
    p.name: p
    for p in (
        CGCNNProperty("formation_energy", "formation-energy-per-atom", "eV/atom", "formation energy per atom"),
        CGCNNProperty("final_energy", "final-energy-per-atom", "eV/atom", "DFT (GGA/GGA+U) total energy per atom"),
        CGCNNProperty("band_gap", "band-gap", "eV", "band gap (trained on semiconductors and insulators only)"),
        CGCNNProperty("bulk_modulus", "bulk-moduli", "log10(GPa)", "bulk modulus (Materials Project elasticity data), log10 of GPa as the model predicts"),
        CGCNNProperty("shear_modulus", "shear-moduli", "log10(GPa)", "shear modulus (Materials Project elasticity data), log10 of GPa as the model predicts"),
        CGCNNProperty("fermi_energy", "efermi", "eV", "Fermi energy (absolute DFT level)"),
        CGCNNProperty("poisson_ratio", "poisson-ratio", "dimensionless", "Poisson ratio"),
    )
}

#: The original files that are deliberately not converted (not a regression model).
SKIPPED_SOURCES = ("semi-metal-classification",)


def check_properties(properties) -> tuple[str, ...]:
    """The requested property names, validated (None = all seven).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if properties is None:
        return tuple(PROPERTIES)
    if isinstance(properties, str):
        properties = (properties,)
    names = tuple(properties)
    unknown = [name for name in names if name not in PROPERTIES]
    if unknown:
        raise ValueError(f"unknown CGCNN properties {unknown}; known: {', '.join(PROPERTIES)}")
    if not names:
        raise ValueError(f"properties is empty; known: {', '.join(PROPERTIES)}")
    return names
