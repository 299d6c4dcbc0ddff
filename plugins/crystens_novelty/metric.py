"""Uniqueness and novelty of generated crystals (the U and N of S.U.N.).

A generated structure is **unique** when pymatgen's ``StructureMatcher`` matches
it to no *earlier* structure of the generated list, and **novel** when it
matches no structure of the reference (training) set. The matcher uses the
tolerances of CDVAE's match rate, also used by DiffCSP and its successors for
these figures: ``ltol=0.3``, ``stol=0.5``, ``angle_tol=10`` (pymatgen's defaults,
0.2 / 0.3 / 5, are stricter); primitive cells, volumes scaled, no supercells.
Structures are only compared within groups of equal reduced composition and
primitive size, which gives the same answers as comparing every pair (see
:mod:`crystens_novelty.matching`) in a fraction of the time.

``None`` entries (failed decodes) and structures the matcher cannot process
count as failures: neither unique nor novel in the headline fractions, NaN in
the per-structure arrays.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from crystens_novelty.matching import GroupedMatcher, prepare
from crystens_core.structures import structure_list


def _prepare_all(structures: list, reasons: Counter, label: str, progress: bool) -> list:
    from crystens_core.progress import progress_bar

    prepared = []
    for structure in progress_bar(structures, desc=f"reducing {label}", unit="structure", enable=progress and len(structures) > 50):
        if structure is None:
            reasons[f"{label}: no structure (failed decode)"] += 1
            prepared.append(None)
            continue
        try:
            prepared.append(prepare(structure))
        except Exception as exc:  # a pathological cell must not stop the others
            reasons[f"{label}: reduction failed ({type(exc).__name__})"] += 1
            prepared.append(None)
    return prepared


def _figures(name: str, flags: np.ndarray) -> dict[str, float]:
    n = len(flags)
    evaluated = int(np.isfinite(flags).sum())
    count = float(np.nansum(flags))
    return {
        name: count / n if n else float("nan"),
        f"{name}_of_evaluated": count / evaluated if evaluated else float("nan"),
        f"n_{'unique' if name == 'uniqueness' else 'novel'}": count,
        "n_evaluated": float(evaluated),
        "n_failed": float(n - evaluated),
        "n_structures": float(n),
        "n_used": float(n),  # the headline fraction is over every entry, failures counting as not unique/novel
        f"n_used_{name}_of_evaluated": float(evaluated),
    }


class _MatcherMetric:
    def __init__(self, ltol: float = 0.3, stol: float = 0.5, angle_tol: float = 10.0, progress: bool = True):
        for option, value in (("ltol", ltol), ("stol", stol), ("angle_tol", angle_tol)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{option} must be a positive number, got {value!r}")
        self.ltol = float(ltol)
        self.stol = float(stol)
        self.angle_tol = float(angle_tol)
        self.progress = bool(progress)

    def get_config(self) -> dict[str, Any]:
        return {"ltol": self.ltol, "stol": self.stol, "angle_tol": self.angle_tol, "progress": self.progress}

    def _matcher(self) -> GroupedMatcher:
        return GroupedMatcher(ltol=self.ltol, stol=self.stol, angle_tol=self.angle_tol)


class UniquenessMetric(_MatcherMetric):
    """Share of generated structures that match no earlier generated structure.

    Args:
        ltol: StructureMatcher fractional length tolerance.
        stol: StructureMatcher site tolerance (fraction of (V/N)^(1/3)).
        angle_tol: StructureMatcher angle tolerance (degrees).
        progress: show a progress bar.
    """

    requires = frozenset({"structures"})

    def compute(self, *, structures, tensors=None, reference=None) -> dict[str, float]:
        """``uniqueness`` (over every entry, failures not unique), ``uniqueness_of_evaluated``, ``n_unique``, ``n_evaluated``, ``n_failed``, ``n_structures``,
        and the counts each figure is over: ``n_used`` (every entry) and ``n_used_uniqueness_of_evaluated``."""
        return self.compute_details(structures=structures)[0]

    def compute_details(self, *, structures, tensors=None, reference=None):
        """The figures of :meth:`compute` and the per-structure ``is_unique`` (1.0/0.0, NaN for failures)."""
        from crystens_core.progress import progress_bar

        structures = structure_list(structures, "structures")
        reasons: Counter = Counter()
        prepared = _prepare_all(structures, reasons, "generated", self.progress)
        matcher = self._matcher()
        is_unique = np.full(len(structures), np.nan)
        earlier: dict[tuple, list[int]] = defaultdict(list)
        for index in progress_bar(range(len(prepared)), desc="uniqueness", unit="structure", enable=self.progress and len(prepared) > 50):
            item = prepared[index]
            if item is None:
                continue
            try:
                unique = not any(matcher.fit(item, prepared[j]) for j in earlier[item.group])
            except Exception as exc:
                reasons[f"generated: matcher failed ({type(exc).__name__})"] += 1
                continue
            is_unique[index] = float(unique)
            earlier[item.group].append(index)
        self.failures_ = dict(reasons)
        return _figures("uniqueness", is_unique), {"generated": {"is_unique": is_unique}, "reference": {}}


class NoveltyMetric(_MatcherMetric):
    """Share of generated structures that match no reference structure.

    Args:
        ltol: StructureMatcher fractional length tolerance.
        stol: StructureMatcher site tolerance (fraction of (V/N)^(1/3)).
        angle_tol: StructureMatcher angle tolerance (degrees).
        progress: show a progress bar.
    """

    requires = frozenset({"structures", "reference"})

    def compute(self, *, structures, reference, tensors=None) -> dict[str, float]:
        """``novelty`` (over every entry, failures not novel), ``novelty_of_evaluated``, ``n_novel``, ``n_evaluated``, ``n_failed``, ``n_structures``, ``n_reference``,
        and the counts each figure is over: ``n_used`` (every entry), ``n_used_novelty_of_evaluated`` and
        ``n_reference_used`` (reference structures the matcher could use)."""
        return self.compute_details(structures=structures, reference=reference)[0]

    def compute_details(self, *, structures, reference, tensors=None):
        """The figures of :meth:`compute` and the per-structure ``is_novel`` (1.0/0.0, NaN for failures)."""
        from crystens_core.progress import progress_bar

        structures = structure_list(structures, "structures")
        reference = structure_list(reference, "reference")
        reasons: Counter = Counter()
        known: dict[tuple, list] = defaultdict(list)
        n_reference_used = 0
        for item in _prepare_all(reference, reasons, "reference", self.progress):
            if item is not None:
                known[item.group].append(item)
                n_reference_used += 1
        prepared = _prepare_all(structures, reasons, "generated", self.progress)
        matcher = self._matcher()
        is_novel = np.full(len(structures), np.nan)
        for index in progress_bar(range(len(prepared)), desc="novelty", unit="structure", enable=self.progress and len(prepared) > 50):
            item = prepared[index]
            if item is None:
                continue
            try:
                is_novel[index] = float(not any(matcher.fit(item, other) for other in known[item.group]))
            except Exception as exc:
                reasons[f"generated: matcher failed ({type(exc).__name__})"] += 1
        self.failures_ = dict(reasons)
        figures = _figures("novelty", is_novel)
        figures["n_reference"] = float(len(reference))
        figures["n_reference_used"] = float(n_reference_used)
        return figures, {"generated": {"is_novel": is_novel}, "reference": {}}
