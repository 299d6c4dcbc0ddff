"""The result a decoder returns for one tensor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Self-consistency figures (the paper's Tables 1–2, plus the Z variance), in the units of the raw tensor:
#: Å² (lengths), degrees² (angles), space-group number², fractional² (coordinates),
#: fractional (ΔCoordinate/atom) and distance units (ΣPairwise/atom).
CONSISTENCY_FIGURES: tuple[str, ...] = (
    "var_lattice_lengths",
    "var_angles",
    "var_spacegroup",
    "var_coordinates",
    "var_atomic_numbers",
    "delta_coordinate_per_atom",
    "pairwise_per_atom",
)


@dataclass
class DecodeResult:
    """What decoding one tensor gave.

    Attributes:
        structure: the pymatgen Structure, or None when decoding failed.
        reason: why decoding failed (None on success).
        n_sites: sites found in the tensor (before merging overlaps).
        spacegroup: the decoded (averaged, rounded) space group number, or None.
        consistency: the self-consistency figures (see :data:`CONSISTENCY_FIGURES`),
            computed from the tensor before any averaged value is used; empty when
            the tensor had no sites or non-finite values.
        merged_sites: how many sites were merged into others because they overlapped.
        notes: what the decoder did instead of what was asked, and why (e.g. a
            structure left unsnapped because spglib did not find its space group).
    """

    structure: Any = None
    reason: str | None = None
    n_sites: int = 0
    spacegroup: int | None = None
    consistency: dict[str, float] = field(default_factory=dict)
    merged_sites: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.structure is not None

    def to_cif(self) -> str:
        """The structure as CIF text (pymatgen's CifWriter, warnings silenced)."""
        if self.structure is None:
            raise ValueError(f"no structure to write: {self.reason}")
        import warnings

        from pymatgen.io.cif import CifWriter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(CifWriter(self.structure))

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable record (no structure)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about noble gases when ordering a formula
            formula = self.structure.composition.reduced_formula if self.ok else None
        return {
            "ok": self.ok,
            "reason": self.reason,
            "n_sites": self.n_sites,
            "spacegroup": self.spacegroup,
            "formula": formula,
            "merged_sites": self.merged_sites,
            "notes": list(self.notes),
            "consistency": dict(self.consistency),
        }
