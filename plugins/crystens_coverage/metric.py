"""Coverage and distribution distances of generated crystals, CDVAE's recipe (Xie et al., ICLR 2022).

Every structure gets a structure fingerprint (site-averaged CrystalNN order
parameters) and a composition fingerprint (magpie statistics, standardised with
fixed means and standard deviations, NaN → 0); see
:mod:`crystens_coverage.fingerprints`. With ``D_s`` and ``D_c`` the Euclidean
distances between generated and reference fingerprints:

- **COV-R** (recall): share of reference structures with min over generated
  ``D_s`` ≤ ``struc_cutoff`` and min over generated ``D_c`` ≤ ``comp_cutoff``;
- **COV-P** (precision): share of generated structures with min over reference
  ``D_s`` ≤ ``struc_cutoff`` and min over reference ``D_c`` ≤ ``comp_cutoff``,
  divided by *all* generated entries (failed decodes and failed fingerprints
  count as not covered);
- AMSD/AMCD: mean of those minimum structure/composition distances;
- the Wasserstein (earth mover's) distances between generated and reference
  densities (g/cm³) and numbers of elements.

As in CDVAE the two minima are taken separately (they may come from different
structures). Protocol ``"cdvae"`` (the default) is CDVAE's ``compute_metrics.py``:
its published composition-scaler constants, its cut-offs for the reference
dataset (MP-20 0.4 / 10, Carbon-24 and Perov-5 0.2 / 4; the dataset is taken from
the ``dataset`` option or recognised from the reference set's name or
structures, MP-20's otherwise) and Wasserstein distances over the *valid* generated structures only
(CDVAE's validity, :mod:`crystens_validity`, and a fingerprint; CDVAE drew 1000 of
them at random, crystens takes all). Protocol ``"crystens"`` is crystens' earlier
recipe: a scaler recomputed from MP-20 rows, cut-offs 0.4 / 10 whatever the
dataset, and Wasserstein distances over every generated structure that exists.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from crystens_core.structures import structure_list

SCALER_FILE = Path(__file__).resolve().parent / "data" / "magpie_scaler_mp20.json"
#: CDVAE's published CompScalerMeans/CompScalerStds (MIT, data/LICENSE-CDVAE).
CDVAE_SCALER_FILE = Path(__file__).resolve().parent / "data" / "magpie_scaler_cdvae.json"
PROTOCOLS = ("cdvae", "crystens")
#: CDVAE's COV cut-offs (structure, composition) per dataset (its scripts/compute_metrics.py).
COVERAGE_CUTOFFS = {"mp20": (0.4, 10.0), "carbon24": (0.2, 4.0), "perov5": (0.2, 4.0)}
SCALERS = ("cdvae", "mp20", "reference")


@functools.lru_cache(maxsize=2)
def shipped_scaler(which: str = "mp20") -> tuple[np.ndarray, np.ndarray]:
    """Means and standard deviations of the magpie fingerprint: "mp20" (recomputed, see build_scaler.py) or "cdvae" (CDVAE's constants)."""
    data = json.loads((CDVAE_SCALER_FILE if which == "cdvae" else SCALER_FILE).read_text())
    return np.asarray(data["means"], dtype=float), np.asarray(data["stds"], dtype=float)


def dataset_from_content(structures: list) -> str | None:
    """"carbon24" when every structure is pure carbon, "perov5" when every one is a 5-atom cell of several elements (Perov-5's ABX₃ cells), else None."""
    present = [s for s in structures if s is not None]
    if not present:
        return None
    if all({el.symbol for el in s.composition.elements} == {"C"} for s in present):
        return "carbon24"
    if all(len(s) == 5 and len(s.composition.elements) > 1 for s in present):
        return "perov5"
    return None


def dataset_from_name(name: str) -> str | None:
    """"mp20", "carbon24" or "perov5" when a reference set's name says so (e.g. "perov-5:test", ".../carbon_24/test.csv.gz"), else None."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    for dataset, marker in (("perov5", "perov"), ("carbon24", "carbon24"), ("mp20", "mp20")):
        if marker in key:
            return dataset
    return None


def _basic_properties(structures: list) -> tuple[np.ndarray, np.ndarray]:
    """Density (g/cm³) and number of elements per structure, NaN for None or a cell without volume."""
    density = np.full(len(structures), np.nan)
    n_elements = np.full(len(structures), np.nan)
    for index, structure in enumerate(structures):
        if structure is None:
            continue
        n_elements[index] = len(structure.composition.elements)
        try:
            value = float(structure.density)
        except Exception:
            continue
        density[index] = value if np.isfinite(value) else np.nan
    return density, n_elements


class CoverageMetric:
    """COV-R, COV-P, AMSD, AMCD and Wasserstein distances of density and number of elements.

    Args:
        protocol: "cdvae" (CDVAE's constants, per-dataset cut-offs, Wasserstein over
            valid structures) or "crystens" (see the module docstring).
        dataset: "mp20", "carbon24" or "perov5": whose CDVAE cut-offs to use; None
            recognises it from the reference set's ``name`` or its structures (see
            :meth:`cutoffs`; MP-20 when unknown).
        struc_cutoff: structure-fingerprint distance cut-off; None = the dataset's
            (CDVAE: 0.4 for MP-20, 0.2 for Carbon-24 and Perov-5; protocol "crystens": 0.4).
        comp_cutoff: standardised composition-fingerprint distance cut-off; None = the
            dataset's (CDVAE: 10 for MP-20, 4 otherwise; protocol "crystens": 10).
        comp_scaler: "cdvae" (CDVAE's published means/stds), "mp20" (recomputed from
            MP-20 rows), "reference" (fitted on the reference set of each call), or
            {"means": [...], "stds": [...]} with 132 values each; None = "cdvae" for
            protocol "cdvae", "mp20" for "crystens".
        symmetry_reduce: fingerprint one site per symmetry orbit and weight it by the
            orbit size (2.5× faster on MP-20, same COV; see fingerprints.py). False
            fingerprints every site, CDVAE's loop.
        n_jobs: worker processes for fingerprinting.
        progress: show progress bars.

    After :meth:`compute`, :meth:`get_config` gives the dataset and cut-offs that
    were used (so the evaluation record holds them).
    """

    requires = frozenset({"structures", "reference"})

    def __init__(self, protocol: str = "cdvae", dataset: str | None = None, struc_cutoff: float | None = None, comp_cutoff: float | None = None, comp_scaler: str | dict | None = None, symmetry_reduce: bool = True, n_jobs: int = 1, progress: bool = True):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        if dataset is not None and dataset not in COVERAGE_CUTOFFS:
            raise ValueError(f"dataset must be one of {', '.join(COVERAGE_CUTOFFS)} (or None to recognise it from the reference), got {dataset!r}")
        for option, value in (("struc_cutoff", struc_cutoff), ("comp_cutoff", comp_cutoff)):
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
                raise ValueError(f"{option} must be a number ≥ 0 (or None for the dataset's), got {value!r}")
        if comp_scaler is None:
            comp_scaler = "cdvae" if protocol == "cdvae" else "mp20"
        if isinstance(comp_scaler, dict):
            from crystens_coverage.fingerprints import COMPOSITION_FINGERPRINT_SIZE

            means, stds = comp_scaler.get("means"), comp_scaler.get("stds")
            if means is None or stds is None or len(means) != COMPOSITION_FINGERPRINT_SIZE or len(stds) != COMPOSITION_FINGERPRINT_SIZE:
                raise ValueError(f"comp_scaler as a dict needs 'means' and 'stds' with {COMPOSITION_FINGERPRINT_SIZE} values each")
            comp_scaler = {"means": [float(v) for v in means], "stds": [float(v) for v in stds]}
        elif comp_scaler not in SCALERS:
            raise ValueError(f"comp_scaler must be one of {', '.join(SCALERS)} or a dict of means and stds, got {comp_scaler!r}")
        if not (isinstance(n_jobs, int) and n_jobs >= 1):
            raise ValueError(f"n_jobs must be an integer ≥ 1, got {n_jobs!r}")
        self.protocol = protocol
        self.dataset = dataset
        self.struc_cutoff = None if struc_cutoff is None else float(struc_cutoff)
        self.comp_cutoff = None if comp_cutoff is None else float(comp_cutoff)
        self.comp_scaler = comp_scaler
        self.symmetry_reduce = bool(symmetry_reduce)
        self.n_jobs = n_jobs
        self.progress = bool(progress)
        self.used_: dict[str, Any] = {}

    def cutoffs(self, reference: list, reference_name: str = "") -> tuple[str, float, float]:
        """(dataset, structure cut-off, composition cut-off) for ``reference`` (a set called ``reference_name``).

        The dataset is the ``dataset`` option, else recognised from the name, else from
        the structures (all carbon: Carbon-24; all 5-atom cells: Perov-5), else MP-20.
        """
        if self.protocol == "crystens":
            dataset = self.dataset or "mp20"
            default = COVERAGE_CUTOFFS["mp20"]
        else:
            dataset = self.dataset or dataset_from_name(reference_name) or dataset_from_content(reference) or "mp20"
            default = COVERAGE_CUTOFFS[dataset]
        struc = default[0] if self.struc_cutoff is None else self.struc_cutoff
        comp = default[1] if self.comp_cutoff is None else self.comp_cutoff
        return dataset, struc, comp

    def get_config(self) -> dict[str, Any]:
        """The options; after a call, with the dataset and cut-offs that call used."""
        return {
            "protocol": self.protocol,
            "dataset": self.used_.get("dataset", self.dataset),
            "struc_cutoff": self.used_.get("struc_cutoff", self.struc_cutoff),
            "comp_cutoff": self.used_.get("comp_cutoff", self.comp_cutoff),
            "comp_scaler": self.comp_scaler,
            "symmetry_reduce": self.symmetry_reduce,
            "n_jobs": self.n_jobs,
            "progress": self.progress,
        }

    def _fingerprints(self, structures: list, label: str, reasons: Counter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ok mask, structure fingerprints of the ok ones, composition fingerprints of the ok ones)."""
        from crystens_coverage.fingerprints import composition_fingerprint, structure_fingerprints

        struct_fps, why = structure_fingerprints(structures, symmetry_reduce=self.symmetry_reduce, n_jobs=self.n_jobs, progress=self.progress, label=label)
        ok = np.array([fp is not None for fp in struct_fps], dtype=bool)
        for reason in why:
            if reason:
                reasons[f"{label}: {reason}"] += 1
        struct = np.array([fp for fp in struct_fps if fp is not None], dtype=float).reshape(-1, 61)
        comp = np.array([composition_fingerprint(s.composition) for s, good in zip(structures, ok) if good], dtype=float).reshape(-1, 132)
        return ok, struct, comp

    def _scale(self, comp: np.ndarray, reference_comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.comp_scaler in ("mp20", "cdvae"):
            means, stds = shipped_scaler(self.comp_scaler)
        elif self.comp_scaler == "reference":
            means, stds = np.nanmean(reference_comp, axis=0), np.nanstd(reference_comp, axis=0)
            stds = np.where(stds > 0, stds, 1.0)
        else:
            means, stds = np.asarray(self.comp_scaler["means"]), np.asarray(self.comp_scaler["stds"])
        return tuple(np.nan_to_num((x - means) / stds, nan=0.0) for x in (comp, reference_comp))  # type: ignore[return-value]

    def compute(self, *, structures, reference, tensors=None) -> dict[str, float]:
        """``cov_recall``, ``cov_precision``, ``amsd_recall``, ``amsd_precision``, ``amcd_recall``,
        ``amcd_precision``, ``wdist_density`` (g/cm³), ``wdist_num_elems``, and the counts
        ``n_structures``, ``n_failed`` (no structure or no fingerprint), ``n_reference`` and
        what each figure was computed on: ``n_used_recall`` (reference structures with a
        fingerprint), ``n_used_cov_precision`` (every generated entry), ``n_used_precision``
        (generated structures with a fingerprint, for AMSD/AMCD), ``n_used_wdist_density`` and
        ``n_used_wdist_num_elems`` (generated structures in each Wasserstein distance:
        valid ones for protocol "cdvae"), ``n_reference_used_wdist_density`` and
        ``n_reference_used_wdist_num_elems``."""
        return self.compute_details(structures=structures, reference=reference)[0]

    def compute_details(self, *, structures, reference, tensors=None):
        """The figures of :meth:`compute` and per-structure arrays.

        Generated (aligned with ``structures``, NaN where a structure is None or has no
        fingerprint): ``struc_precision_dist``, ``comp_precision_dist``, ``covered``
        (1.0/0.0), ``density`` (g/cm³), ``n_elements``. Reference: ``struc_recall_dist``,
        ``comp_recall_dist``, ``covered``, ``density``, ``n_elements``.
        """
        from scipy.spatial.distance import cdist
        from scipy.stats import wasserstein_distance

        reference_name = str(getattr(reference, "name", "") or "")
        structures = structure_list(structures, "structures")
        reference = structure_list(reference, "reference")
        dataset, struc_cutoff, comp_cutoff = self.cutoffs(reference, reference_name)
        self.used_ = {"dataset": dataset, "struc_cutoff": struc_cutoff, "comp_cutoff": comp_cutoff}
        if not any(s is not None for s in reference):
            raise ValueError("reference must hold at least one structure")
        reasons: Counter = Counter()
        ref_ok, ref_struct, ref_comp = self._fingerprints(reference, "reference", reasons)
        gen_ok, gen_struct, gen_comp = self._fingerprints(structures, "generated", reasons)
        if not ref_ok.any():
            raise ValueError("no reference structure could be fingerprinted: " + ", ".join(f"{k} ({v})" for k, v in reasons.items()))
        gen_comp, ref_comp = self._scale(gen_comp, ref_comp)

        n_gen, n_ref = len(structures), len(reference)
        gen_arrays = {name: np.full(n_gen, np.nan) for name in ("struc_precision_dist", "comp_precision_dist", "covered")}
        ref_arrays = {name: np.full(n_ref, np.nan) for name in ("struc_recall_dist", "comp_recall_dist", "covered")}
        figures: dict[str, float] = {}
        if gen_ok.any():
            struc = cdist(gen_struct, ref_struct)
            comp = cdist(gen_comp, ref_comp)
            precision_s, precision_c = struc.min(axis=1), comp.min(axis=1)
            recall_s, recall_c = struc.min(axis=0), comp.min(axis=0)
            precision_hit = (precision_s <= struc_cutoff) & (precision_c <= comp_cutoff)
            recall_hit = (recall_s <= struc_cutoff) & (recall_c <= comp_cutoff)
            gen_arrays["struc_precision_dist"][gen_ok] = precision_s
            gen_arrays["comp_precision_dist"][gen_ok] = precision_c
            gen_arrays["covered"][gen_ok] = precision_hit
            ref_arrays["struc_recall_dist"][ref_ok] = recall_s
            ref_arrays["comp_recall_dist"][ref_ok] = recall_c
            ref_arrays["covered"][ref_ok] = recall_hit
            figures.update(
                cov_recall=float(recall_hit.mean()),
                cov_precision=float(precision_hit.sum() / n_gen),
                amsd_recall=float(recall_s.mean()),
                amsd_precision=float(precision_s.mean()),
                amcd_recall=float(recall_c.mean()),
                amcd_precision=float(precision_c.mean()),
            )
        else:
            ref_arrays["covered"][ref_ok] = 0.0
            figures.update(cov_recall=0.0, cov_precision=0.0, amsd_recall=float("nan"), amsd_precision=float("nan"), amcd_recall=float("nan"), amcd_precision=float("nan"))

        gen_density, gen_elements = _basic_properties(structures)
        ref_density, ref_elements = _basic_properties(reference)
        if self.protocol == "cdvae":  # CDVAE: valid structures (its validity and a fingerprint) only
            from crystens_validity.metric import ValidityMetric

            struct_valid, comp_valid, _ = ValidityMetric(protocol="cdvae").flags(structures)
            in_wdist = gen_ok & (struct_valid == 1.0) & (comp_valid == 1.0)
        else:
            in_wdist = np.array([s is not None for s in structures], dtype=bool)
        for name, generated, real in (("wdist_density", gen_density, ref_density), ("wdist_num_elems", gen_elements, ref_elements)):
            generated, real = generated[in_wdist & np.isfinite(generated)], real[np.isfinite(real)]
            figures[name] = float(wasserstein_distance(generated, real)) if len(generated) and len(real) else float("nan")
            figures[f"n_used_{name}"] = float(len(generated))
            figures[f"n_reference_used_{name}"] = float(len(real))
        figures["n_structures"] = float(n_gen)
        figures["n_failed"] = float(n_gen - gen_ok.sum())
        figures["n_reference"] = float(n_ref)
        figures["n_used_recall"] = float(ref_ok.sum())
        figures["n_used_precision"] = float(gen_ok.sum())
        figures["n_used_cov_precision"] = float(n_gen)
        self.failures_ = dict(reasons)
        details = {
            "generated": {**gen_arrays, "density": gen_density, "n_elements": gen_elements},
            "reference": {**ref_arrays, "density": ref_density, "n_elements": ref_elements},
        }
        return figures, details
