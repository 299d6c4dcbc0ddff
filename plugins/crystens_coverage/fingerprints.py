"""CDVAE's crystal fingerprints, computed once per structure and cached per process.

- Structure fingerprint: matminer's ``CrystalNNFingerprint`` with the "ops"
  preset (61 CrystalNN-weighted local order parameters, coordination numbers
  1–24) for every site, averaged over the sites of the structure.
- Composition fingerprint: matminer's ``ElementProperty`` "magpie" preset (132
  statistics of 22 elemental properties), without imputing missing elemental data
  (as in the matminer CDVAE used: missing values become 0 after scaling).

Fingerprints are cached by structure content (structure) and by fractional
composition (composition), so a reference set is fingerprinted once per process.
``symmetry_reduce`` computes one site per crystallographic orbit (spglib,
``symprec`` 1e-3 Å) and weights it by the orbit size: the same mean up to the
fingerprint's own numerical noise between equivalent sites (measured in
docs/metrics-structure.md), at a fraction of the cost for symmetric crystals.
``n_jobs > 1`` spreads the structures over worker processes.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
from crystens_core.structures import content_key, quiet_spglib

STRUCTURE_FINGERPRINT_SIZE = 61
COMPOSITION_FINGERPRINT_SIZE = 132
ORBIT_SYMPREC = 1e-3
_CACHE_SIZE = 200_000
_structure_cache: OrderedDict[tuple[bytes, bool], np.ndarray] = OrderedDict()


@functools.lru_cache(maxsize=1)
def _site_featurizer():
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops")


@functools.lru_cache(maxsize=1)
def _composition_featurizer():
    from matminer.featurizers.composition.composite import ElementProperty

    return ElementProperty.from_preset("magpie", impute_nan=False)


def composition_labels() -> list[str]:
    """The 132 magpie feature names, in fingerprint order."""
    return list(_composition_featurizer().feature_labels())


def _orbits(structure) -> tuple[np.ndarray, np.ndarray]:
    """Representative site indices and orbit sizes (every site its own orbit if spglib fails)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with quiet_spglib():
            equivalent = np.asarray(SpacegroupAnalyzer(structure, symprec=ORBIT_SYMPREC).get_symmetry_dataset().equivalent_atoms)
        representatives, sizes = np.unique(equivalent, return_counts=True)
        return representatives, sizes
    except Exception:
        return np.arange(len(structure)), np.ones(len(structure), dtype=int)


def compute_structure_fingerprint(structure, symmetry_reduce: bool = False) -> np.ndarray:
    """The site-averaged CrystalNN fingerprint (61 floats), uncached.

    Raises:
        Exception: whatever CrystalNN raises on a pathological structure.
    """
    featurizer = _site_featurizer()
    if symmetry_reduce:
        sites, weights = _orbits(structure)
    else:
        sites, weights = np.arange(len(structure)), np.ones(len(structure), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.array([featurizer.featurize(structure, int(i)) for i in sites], dtype=float)
    return (values * weights[:, None]).sum(axis=0) / weights.sum()


def _fingerprint_task(arguments: tuple[Any, bool]) -> tuple[np.ndarray | None, str]:
    structure, symmetry_reduce = arguments
    try:
        return compute_structure_fingerprint(structure, symmetry_reduce), ""
    except Exception as exc:  # reported as a per-structure failure
        return None, f"structure fingerprint failed ({type(exc).__name__})"


def structure_fingerprints(structures: Sequence, *, symmetry_reduce: bool = False, n_jobs: int = 1, progress: bool = True, label: str = "structures") -> tuple[list[np.ndarray | None], list[str]]:
    """Fingerprints of ``structures`` (None entries and failures give None, with a reason).

    Returns:
        (fingerprints, reasons): one entry per structure; reason "" where it worked.
    """
    from crystens_core.progress import progress_bar

    fingerprints: list[np.ndarray | None] = [None] * len(structures)
    reasons = [""] * len(structures)
    todo: dict[tuple[bytes, bool], list[int]] = {}
    for index, structure in enumerate(structures):
        if structure is None:
            reasons[index] = "no structure (failed decode)"
            continue
        key = (content_key(structure), bool(symmetry_reduce))
        cached = _structure_cache.get(key)
        if cached is not None:
            _structure_cache.move_to_end(key)
            fingerprints[index] = cached
        else:
            todo.setdefault(key, []).append(index)
    keys = list(todo)
    tasks = [(structures[todo[key][0]], bool(symmetry_reduce)) for key in keys]
    bar = progress_bar(total=len(tasks), desc=f"fingerprinting {label}", unit="structure", enable=progress and len(tasks) > 20)
    if n_jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            results = []
            for result in pool.map(_fingerprint_task, tasks, chunksize=max(1, min(16, len(tasks) // (4 * n_jobs)))):
                results.append(result)
                bar.update(1)
    else:
        results = []
        for task in tasks:
            results.append(_fingerprint_task(task))
            bar.update(1)
    bar.close()
    for key, (fingerprint, reason) in zip(keys, results):
        if fingerprint is not None:
            _structure_cache[key] = fingerprint
            if len(_structure_cache) > _CACHE_SIZE:
                _structure_cache.popitem(last=False)
        for index in todo[key]:
            fingerprints[index], reasons[index] = fingerprint, reason
    return fingerprints, reasons


@functools.lru_cache(maxsize=100_000)
def _composition_fingerprint(fractions: tuple[tuple[str, float], ...]) -> np.ndarray:
    from pymatgen.core import Composition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(_composition_featurizer().featurize(Composition(dict(fractions))), dtype=float)
    values.setflags(write=False)
    return values


def composition_fingerprint(composition) -> np.ndarray:
    """The 132 magpie statistics of a composition (NaN where elemental data are missing), cached by fractional composition."""
    fractional = composition.element_composition.fractional_composition
    return _composition_fingerprint(tuple(sorted((el.symbol, round(float(amount), 10)) for el, amount in fractional.items())))


def clear_cache() -> None:
    """Forget every cached fingerprint."""
    _structure_cache.clear()
    _composition_fingerprint.cache_clear()
