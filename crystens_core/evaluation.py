"""Evaluate generated crystals: read them, run metrics (with per-structure details), derive S.U.N.

The pieces `crystens evaluate`, `crystens run` and :class:`~crystens_core.pipeline.CrystalPipeline`
share:

- :func:`read_generated` reads a folder of CIFs, one CIF, a CSV(.gz) with a ``cif``
  column, a ``.npy`` of raw tensors (decoded here) or a folder written by
  ``crystens decode`` / ``crystens sample`` into one list of structures with one
  slot per input item (None where the item could not be read or decoded), and
  records why per item;
- :func:`run_metrics` runs every metric, using ``compute_details`` where a metric
  has it, and checks the details against the metric contract;
- :func:`sun_figures` derives the share of stable, unique and novel structures from
  the details named ``is_unique``, ``is_novel`` and ``e_above_hull``;
- :func:`structure_property_arrays` gives the per-structure lattice, space group and
  composition values the report draws (paper Figs 4–6).

Nothing here imports a deep-learning or plotting library.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crystens_core.data.dataset import MISSING_VALUE, SkipReport, parse_row, parse_source_row, read_source_report, row_ids
from crystens_core.errors import DatasetError
from crystens_core.structures import UNKNOWN_ELEMENT, quiet_spglib, structure_problem  # noqa: F401  (UNKNOWN_ELEMENT: one of the skip reasons, kept importable here)

#: A structure is stable when its energy above hull is at most this (eV/atom).
STABILITY_THRESHOLD = 0.1
#: Atoms closer than this (Å) are reported as overlapping (structural validity uses the same bound).
MIN_DISTANCE = 0.5
#: Generated detail names the S.U.N. rate is computed from.
SUN_INPUTS = ("is_unique", "is_novel", "e_above_hull")

# Reasons an input item gives no structure (beyond those of crystens_core.data).
EMPTY_FILE = "empty file"
DECODE_FAILED = "decode failed"
UNSAFE_PATH = "unsafe path"
UNREADABLE_IDS = "unreadable ids"
OVERLAPPING_ATOMS = "overlapping atoms"

#: Per-structure properties of :func:`structure_property_arrays` with axis labels.
PROPERTY_LABELS: dict[str, str] = {
    "a": "a (Å)",
    "b": "b (Å)",
    "c": "c (Å)",
    "alpha": "α (degrees)",
    "beta": "β (degrees)",
    "gamma": "γ (degrees)",
    "spacegroup": "space group number",
    "atomic_number_sites": "atomic number (every site)",
    "density": "density (g/cm³)",
    "n_elements": "elements per structure",
    "n_sites": "sites per cell",
}


# -- reading generated crystals ----------------------------------------------------------
@dataclass
class GeneratedSet:
    """Generated crystals, one slot per input item.

    Attributes:
        source: what was read (path).
        kind: ``"cif-folder"``, ``"cif"``, ``"csv"``, ``"npy"`` or ``"decoded-folder"``.
        ids: one id per item (file stem, ``material_id`` column, row number or tensor id).
        structures: pymatgen Structures aligned with ``ids``; None where the item gave none.
        tensors: the raw (N, C, S, S) tensors when the input had them, aligned with ``ids``.
        skipped: items without a structure, by reason (they stay in ``structures`` as None).
        warnings: items that are evaluated but look wrong (e.g. overlapping atoms), and
            entries of a CIF folder that are not CIFs (reason "not a CIF file"; not items).
        settings: how the items were read (decoder and its settings for tensors).
    """

    source: str
    kind: str
    ids: list[str]
    structures: list
    tensors: np.ndarray | None = None
    skipped: SkipReport = field(default_factory=SkipReport)
    warnings: SkipReport = field(default_factory=SkipReport)
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_structures(self) -> int:
        """Items that gave a structure."""
        return sum(s is not None for s in self.structures)

    def counts(self) -> dict[str, int]:
        """Input counts for metrics.json."""
        return {"items": len(self), "structures": self.n_structures, "skipped": self.skipped.total, "warnings": self.warnings.total}

    @classmethod
    def from_results(cls, ids: list[str], results: list, *, tensors: np.ndarray | None = None, source: str = "", settings: dict[str, Any] | None = None) -> "GeneratedSet":
        """A set from decoder results (``crystens run``, the pipeline): failed decodings become None slots."""
        generated = cls(source, "npy", [], [], tensors=tensors, settings=dict(settings or {}))
        for item_id, result in zip(ids, results):
            _add_result(generated, str(item_id), result)
        return generated


def issue_list(report: SkipReport) -> list[dict[str, str]]:
    """``[{"id", "reason", "detail"}, ...]``, one entry per item, in reason order."""
    return [{"id": item, "reason": reason, "detail": report.details.get(item, "")} for reason in sorted(report.counts) for item in report.ids[reason]]


def shortest_distance(structure, cutoff: float) -> float | None:
    """The shortest interatomic distance (Å, periodic images included) when it is below ``cutoff``, else None."""
    _, _, _, distances = structure.get_neighbor_list(r=cutoff)
    return float(distances.min()) if len(distances) else None


def structure_warning(structure, min_distance: float = MIN_DISTANCE) -> tuple[str, str] | None:
    """Why an evaluated structure looks wrong (overlapping atoms), or None."""
    try:
        shortest = shortest_distance(structure, min_distance)
    except Exception as exc:  # a cell so degenerate pymatgen cannot measure it
        return OVERLAPPING_ATOMS, f"distances could not be computed ({type(exc).__name__})"
    if shortest is not None:
        return OVERLAPPING_ATOMS, f"shortest interatomic distance {shortest:.3f} Å < {min_distance} Å"
    return None


def _add_structure(generated: GeneratedSet, item_id: str, structure) -> None:
    if structure is not None:
        problem = structure_problem(structure)  # the check every parsed structure gets (decoded ones too)
        if problem:
            generated.skipped.add(problem[0], item_id, problem[1])
            structure = None
        else:
            warning = structure_warning(structure)
            if warning:
                generated.warnings.add(warning[0], item_id, warning[1])
    generated.ids.append(item_id)
    generated.structures.append(structure)


def read_generated(path: str | Path, *, decoder: str = "auto", decoder_config: dict[str, Any] | None = None, progress: bool = False) -> GeneratedSet:
    """Read generated crystals from ``path``; unreadable items become None slots with a reason.

    Args:
        path: a folder of ``.cif`` files (or one written by ``crystens decode`` /
            ``crystens sample``, whose ``summary.json`` lists the failed decodings and
            whose ``tensors.npy`` is used for tensor metrics), one ``.cif`` file, a
            CSV/CSV.gz with a ``cif`` column, or a ``.npy`` of raw tensors (N, C, S, S).
        decoder: decoder name for ``.npy`` input; ``decoder_config`` its settings.
        progress: show progress bars.

    Raises:
        DatasetError: ``path`` does not exist or cannot be read at all (no CIFs, no
            ``cif`` column, not a tensor array).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.suffix == ".npy":
        return _read_tensors(path, decoder, decoder_config or {}, progress)
    if path.is_dir() and (path / "summary.json").is_file():
        decoded = _read_decoded_folder(path)
        if decoded is not None:
            return decoded
    kind = "cif-folder" if path.is_dir() else ("cif" if path.suffix.lower() == ".cif" else "csv")
    name, columns, rows, ignored = read_source_report(path)
    generated = GeneratedSet(str(path), kind, [], [])
    generated.warnings.merge(ignored)  # files in the folder that are not CIFs: reported, not items
    from crystens_core.progress import progress_bar

    for item_id, row in zip(row_ids(rows, columns), progress_bar(rows, desc=f"read {name}", unit="cif", enable=progress)):
        structure, problem = parse_source_row(row)
        if problem is not None:
            reason, detail = problem
            if reason == MISSING_VALUE and kind != "csv":
                reason, detail = EMPTY_FILE, f"{item_id}.cif has no content"
            generated.skipped.add(reason, item_id, detail)
        _add_structure(generated, item_id, structure)
    return generated


def _load_tensor_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise DatasetError(f"{path}: not a .npy file of tensors (numpy could not read it: {exc})") from exc
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise DatasetError(f"{path}: expected raw tensors of shape (N, C, S, S), got shape {array.shape}")
    return np.asarray(array, dtype=np.float32)


def _read_tensors(path: Path, decoder: str, decoder_config: dict[str, Any], progress: bool) -> GeneratedSet:
    from crystens_core.decoded_output import sidecar_ids
    from crystens_core.encoding import metadata_path
    from crystens_core.plugins import get_decoder

    tensors = _load_tensor_array(path)
    instance = get_decoder(decoder, **decoder_config)
    ids, problem = sidecar_ids(path, len(tensors))
    config = instance.get_config() if hasattr(instance, "get_config") else dict(decoder_config)
    generated = GeneratedSet(str(path), "npy", [], [], tensors=tensors, settings={"decoder": decoder, "decoder_config": config})
    if problem:  # not an item: the tensors are evaluated under numbered ids
        generated.warnings.add(UNREADABLE_IDS, metadata_path(path).name, problem)
    for item_id, result in zip(ids, instance.decode_batch(tensors, progress=progress)):
        _add_result(generated, str(item_id), result)
    return generated


def _add_result(generated: GeneratedSet, item_id: str, result) -> None:
    if not result.ok:
        generated.skipped.add(DECODE_FAILED, item_id, str(result.reason or "unknown"))
    _add_structure(generated, item_id, result.structure)


def _read_decoded_folder(path: Path) -> GeneratedSet | None:
    """A folder written by ``crystens decode``/``sample``: failed decodings count as items too.

    ``summary.json`` is untrusted: a CIF name in it that leads outside the folder
    (``..``, an absolute path, a symbolic link out) skips that item with the reason.
    """
    from crystens_core.data.dataset import UNPARSABLE
    from crystens_core.decoded_output import SUMMARY_NAME, TENSORS_NAME
    from crystens_core.safe_io import UnsafePathError, UntrustedFileError, path_inside, read_json, safe_filename

    try:
        summary = read_json(path / SUMMARY_NAME)
        records = summary["results"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return None
        ids = [str(r["id"]) for r in records]
    except (UntrustedFileError, KeyError, TypeError):
        return None  # not ours: read the CIFs as a plain folder
    tensors = None
    if (path / TENSORS_NAME).is_file():
        try:
            candidate = _load_tensor_array(path_inside(path, TENSORS_NAME, what="tensors file"))
            tensors = candidate if len(candidate) == len(ids) else None
        except (DatasetError, UnsafePathError):
            tensors = None
    settings = {k: summary[k] for k in ("decoder", "decoder_config", "generator", "seed") if k in summary}
    generated = GeneratedSet(str(path), "decoded-folder", [], [], tensors=tensors, settings=settings)
    for item_id, record in zip(ids, records):
        structure = None
        if not record.get("ok"):
            generated.skipped.add(DECODE_FAILED, item_id, str(record.get("reason") or ""))
        else:
            name = record.get("cif") or f"{safe_filename(item_id)}.cif"
            try:
                if not isinstance(name, str):
                    raise UnsafePathError(f"CIF file name {name!r} in {SUMMARY_NAME} is not a string")
                cif = path_inside(path, name, what="CIF file name")
            except UnsafePathError as exc:
                generated.skipped.add(UNSAFE_PATH, item_id, str(exc))
            else:
                text = cif.read_text(encoding="utf-8", errors="replace") if cif.is_file() else ""
                structure, problem = parse_row(text)
                if problem is not None:
                    reason = EMPTY_FILE if problem[0] == MISSING_VALUE else problem[0]
                    generated.skipped.add(reason if cif.is_file() else UNPARSABLE, item_id, problem[1] if cif.is_file() else f"{cif.name} is missing")
        _add_structure(generated, item_id, structure)
    return generated


# -- metrics and their details -----------------------------------------------------------
@dataclass
class Evaluation:
    """Every metric's figures and per-structure details for one generated set.

    Attributes:
        figures: metric name → ``{figure: float}`` (``{"error": message}`` when the metric failed).
        details: metric name → ``{"generated": {name: array}, "reference": {name: array}}``.
        sun: the S.U.N. figures (:func:`sun_figures`), None when the details lack an input.
        detail_errors: metric name → why (some of) its details were left out.
        seconds: metric name → wall time of the metric (s).
        sun_inputs: S.U.N. input (``is_unique``, ``is_novel``, ``e_above_hull``) → the
            metric whose details supplied it (see :func:`sun_inputs`).
        sun_warnings: why a S.U.N. input is ambiguous or the chosen source is missing.
    """

    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    sun: dict[str, float] | None = None
    detail_errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    sun_inputs: dict[str, str] = field(default_factory=dict)
    sun_warnings: list[str] = field(default_factory=list)


def check_details(details: Any, n_generated: int | None) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """Validate ``compute_details``' second value and convert it to float arrays.

    Arrays that break the contract (not 1-D numbers, or on the generated side not one
    value per generated structure) are left out one by one and described.

    Args:
        details: ``{"generated": {name: 1-D array}, "reference": {name: 1-D array}}`` (either side optional).
        n_generated: the length every generated array must have (None: not checked).

    Returns:
        ``(details, problems)``: the valid arrays and one message per array left out.

    Raises:
        ValueError: ``details`` is not shaped like the contract at all (the message says how).
    """
    if not isinstance(details, dict):
        raise ValueError(f"details must be a dict with 'generated'/'reference', got {type(details).__name__}")
    unknown = set(details) - {"generated", "reference"}
    if unknown:
        raise ValueError(f"details may only have the keys 'generated' and 'reference', got {sorted(unknown)}")
    checked: dict[str, dict[str, np.ndarray]] = {}
    problems: list[str] = []
    for side in ("generated", "reference"):
        arrays = details.get(side) or {}
        if not isinstance(arrays, dict):
            raise ValueError(f"details[{side!r}] must be a dict name → array, got {type(arrays).__name__}")
        checked[side] = {}
        for name, values in arrays.items():
            if not isinstance(name, str) or not name or "/" in name:
                problems.append(f"details[{side!r}]: bad name {name!r} (a non-empty str without '/')")
                continue
            try:
                array = np.asarray(values, dtype=float)
            except (TypeError, ValueError) as exc:
                problems.append(f"details[{side!r}][{name!r}]: not numeric ({exc})")
                continue
            if array.ndim != 1:
                problems.append(f"details[{side!r}][{name!r}]: must be 1-D, got shape {array.shape}")
            elif side == "generated" and n_generated is not None and len(array) != n_generated:
                problems.append(f"details['generated'][{name!r}]: {len(array)} values for {n_generated} generated structures (one per structure, NaN where it failed)")
            else:
                checked[side][name] = array
    return checked, problems


def _missing_input_error(name: str, missing: list[str]) -> str:
    hint = " (give --generated a .npy of raw tensors or a `crystens sample` folder)" if "tensors" in missing else ""
    return f"metric {name!r} needs {', '.join(missing)}, which this evaluation does not have{hint}"


def run_metrics(
    metrics: dict[str, Any],
    *,
    tensors: np.ndarray | None = None,
    structures: list | None = None,
    reference: list | None = None,
    stability_threshold: float = STABILITY_THRESHOLD,
    on_metric: Callable[[str], None] | None = None,
    sun_sources: dict[str, str] | None = None,
) -> Evaluation:
    """Run every metric (``compute_details`` where it exists); one failing metric never stops the others.

    Args:
        metrics: name → metric instance.
        tensors: raw generated tensors (N, C, S, S), or None.
        structures: generated structures, one per generated item, None where it failed.
        reference: reference (training) structures.
        stability_threshold: energy above hull (eV/atom) up to which a structure is stable, for S.U.N.
        on_metric: called with each metric's name before it runs (progress messages).
        sun_sources: S.U.N. input → the metric to take it from, where several metrics supply it
            (see :func:`sun_inputs`).

    Returns:
        An :class:`Evaluation`; its ``sun`` is set when the generated details have
        ``is_unique``, ``is_novel`` and ``e_above_hull``, ``sun_inputs`` names the metric
        each came from and ``sun_warnings`` says where that was ambiguous.
    """
    inputs = {"tensors": tensors, "structures": structures, "reference": reference}
    evaluation = Evaluation()
    for name, metric in metrics.items():
        requires = set(getattr(metric, "requires", ()))
        missing = sorted(k for k in requires if inputs.get(k) is None)
        if missing:
            evaluation.figures[name] = {"error": _missing_input_error(name, missing)}
            continue
        arguments = {k: inputs[k] for k in requires}
        if on_metric is not None:
            on_metric(name)
        started = time.perf_counter()
        try:
            if callable(getattr(metric, "compute_details", None)):
                figures, details = metric.compute_details(**arguments)
                n_generated = len(structures) if "structures" in requires else (len(tensors) if "tensors" in requires else None)
                try:
                    evaluation.details[name], problems = check_details(details, n_generated)
                    if problems:
                        evaluation.detail_errors[name] = "; ".join(problems)
                except ValueError as exc:
                    evaluation.detail_errors[name] = str(exc)
            else:
                figures = metric.compute(**arguments)
            evaluation.figures[name] = dict(figures)
        except Exception as exc:  # one failing metric must not lose the others
            evaluation.figures[name] = {"error": f"{type(exc).__name__}: {exc}"}
        evaluation.seconds[name] = time.perf_counter() - started
    n = len(structures) if structures is not None else (len(tensors) if tensors is not None else 0)
    evaluation.sun_inputs, evaluation.sun_warnings = sun_inputs(evaluation.details, n, sun_sources)
    evaluation.sun = sun_figures(evaluation.details, n, stability_threshold, sun_sources)
    return evaluation


def sun_inputs(details: dict[str, dict[str, dict[str, np.ndarray]]], n: int, sources: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Which metric supplies each S.U.N. input, and warnings where that is not clear-cut.

    An input (``is_unique``, ``is_novel``, ``e_above_hull``) comes from the generated
    details of a metric, one value per generated item. ``sources`` (input → metric name,
    ``--sun-source`` on the command line) chooses it explicitly. Without a choice, a
    single metric supplying the input is used; when several do, the first that ran is
    used **and** a warning names them all (and how to choose), so that two energy-above-hull
    metrics never decide the S.U.N. rate silently. A chosen metric that does not supply
    the input gives a warning and no S.U.N. rate.

    Returns:
        ``(inputs, warnings)``: input → metric name (inputs no metric supplies are left out),
        and the warnings (recorded as ``sun_warnings`` in metrics.json).
    """
    sources = dict(sources or {})
    chosen: dict[str, str] = {}
    warnings_: list[str] = []
    unknown = sorted(set(sources) - set(SUN_INPUTS))
    if unknown:
        warnings_.append(f"sun source for {', '.join(map(repr, unknown))} ignored: the S.U.N. inputs are {', '.join(SUN_INPUTS)}")
    for name in SUN_INPUTS:
        candidates = [metric for metric, sides in details.items() if (a := sides.get("generated", {}).get(name)) is not None and len(a) == n]
        if name in sources:
            if sources[name] in candidates:
                chosen[name] = sources[name]
            else:
                warnings_.append(f"{name}: the chosen metric {sources[name]!r} gave no {name} for the {n} generated items" + (f" (supplied by {', '.join(map(repr, candidates))})" if candidates else ""))
            continue
        if candidates:
            chosen[name] = candidates[0]
        if len(candidates) > 1:
            warnings_.append(f"{name}: supplied by several metrics ({', '.join(map(repr, candidates))}); the S.U.N. rate uses {candidates[0]!r}, the first that ran (choose one with --sun-source {name}=METRIC)")
    return chosen, warnings_


def sun_figures(details: dict[str, dict[str, dict[str, np.ndarray]]], n: int, threshold: float = STABILITY_THRESHOLD, sources: dict[str, str] | None = None) -> dict[str, float] | None:
    """The S.U.N. rate from per-structure details of any metrics, or None when one input is missing.

    Each input comes from the metric :func:`sun_inputs` picks (``sources`` chooses explicitly).

    A structure counts when ``e_above_hull <= threshold`` (eV/atom), ``is_unique == 1`` and
    ``is_novel == 1``; NaN (a failed or missing structure) never counts. Rates are over all
    ``n`` generated items, failed ones included.

    Returns:
        ``sun_rate``, ``stable_rate``, ``unique_rate``, ``novel_rate``, ``unique_novel_rate``,
        the matching counts ``n_sun``, ``n_stable``, ``n_unique``, ``n_novel``, and ``n_generated``,
        ``stability_threshold``.
    """
    chosen, _ = sun_inputs(details, n, sources)
    if n == 0 or any(name not in chosen for name in SUN_INPUTS):
        return None
    arrays = {name: details[chosen[name]]["generated"][name] for name in SUN_INPUTS}  # sun_inputs chose only non-None arrays of length n
    with np.errstate(invalid="ignore"):
        unique = arrays["is_unique"] == 1.0
        novel = arrays["is_novel"] == 1.0
        stable = arrays["e_above_hull"] <= threshold
    sun = unique & novel & stable
    figures = {
        "sun_rate": float(sun.sum() / n),
        "stable_rate": float(stable.sum() / n),
        "unique_rate": float(unique.sum() / n),
        "novel_rate": float(novel.sum() / n),
        "unique_novel_rate": float((unique & novel).sum() / n),
        "n_sun": float(sun.sum()),
        "n_stable": float(stable.sum()),
        "n_unique": float(unique.sum()),
        "n_novel": float(novel.sum()),
        "n_generated": float(n),
        "stability_threshold": float(threshold),
    }
    return figures


# -- per-structure properties for the plots ----------------------------------------------
def structure_property_arrays(structures: list, symprec: float = 0.1, known: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-structure a, b, c (Å), α, β, γ (degrees), space group, density (g/cm³), elements, sites.

    Arrays are aligned with ``structures`` (NaN for None and, for the space group, where
    spglib fails), except ``atomic_number_sites``, which pools the atomic numbers of
    every site of every structure (paper Fig. 6).

    Args:
        structures: pymatgen Structures, None for failed items.
        symprec: spglib tolerance (Å).
        known: arrays already computed (a metric's details); a known
            ``spacegroup`` of the right length saves the spglib calls.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    names = ("a", "b", "c", "alpha", "beta", "gamma", "spacegroup", "density", "n_elements", "n_sites")
    values = {name: np.full(len(structures), np.nan) for name in names}
    known_groups = None if known is None else known.get("spacegroup")
    if known_groups is not None and len(known_groups) == len(structures):
        values["spacegroup"] = np.asarray(known_groups, dtype=float).copy()
    sites: list[int] = []
    for i, structure in enumerate(structures):
        if structure is None:
            continue
        for name, value in zip(names[:6], structure.lattice.parameters):
            values[name][i] = value
        if known_groups is None or len(known_groups) != len(structures):
            try:
                with quiet_spglib():
                    values["spacegroup"][i] = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
            except Exception:  # spglib fails on some generated cells: NaN for this property only
                pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values["density"][i] = float(structure.density)
        values["n_elements"][i] = len(structure.composition.elements)
        values["n_sites"][i] = len(structure)
        sites.extend(structure.atomic_numbers)
    values["atomic_number_sites"] = np.asarray(sites, dtype=float)
    return values


def _known_spacegroups(metrics: dict[str, Any], details: dict, symprec: float) -> dict[str, np.ndarray]:
    """Side → ``{"spacegroup": array}`` of the first metric that reports space groups in its
    details and was run at the same ``symprec`` (its ``symprec`` attribute)."""
    for name, metric in metrics.items():
        sides = details.get(name, {})
        if getattr(metric, "symprec", None) == symprec and "spacegroup" in sides.get("generated", {}):
            return {side: {"spacegroup": values["spacegroup"]} for side, values in sides.items() if "spacegroup" in values}
    return {}


# -- the record every report folder holds -------------------------------------------------
class ReferenceStructures(list):
    """The reference structures handed to the metrics, with the ``name`` of the set they
    came from (e.g. ``"perov-5:test"``), so a metric can follow that dataset's protocol."""

    def __init__(self, structures=(), name: str = ""):
        super().__init__(structures)
        self.name = name


def checked_reference(reference) -> tuple[list, SkipReport]:
    """The reference structures and their skip report; a plain list is checked here
    (a :class:`~crystens_core.data.CrystalDataset` was checked when it was loaded)."""
    from crystens_core.data import CrystalDataset

    if isinstance(reference, CrystalDataset):
        return ReferenceStructures(reference.structures, reference.name), reference.skipped
    structures, skipped = ReferenceStructures(name=str(getattr(reference, "name", "") or "")), SkipReport()
    for index, structure in enumerate(reference):
        problem = structure_problem(structure) if structure is not None else ("missing structure", "None")
        if problem:
            skipped.add(problem[0], f"reference[{index}]", problem[1])
        else:
            structures.append(structure)
    return structures, skipped


def metric_settings(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metric name → its ``get_config()`` (and plugin class) for the record."""
    settings = {}
    for name, metric in metrics.items():
        try:
            config = metric.get_config() if hasattr(metric, "get_config") else {}
        except Exception as exc:
            config = {"error": f"get_config failed: {exc}"}
        settings[name] = {"class": f"{type(metric).__module__}.{type(metric).__qualname__}", "config": config}
    return settings


def evaluate_generated(
    generated: GeneratedSet,
    reference,
    metrics: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    symprec: float = 0.1,
    stability_threshold: float = STABILITY_THRESHOLD,
    on_metric: Callable[[str], None] | None = None,
    sun_sources: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, np.ndarray]]]]:
    """Run ``metrics`` on ``generated`` against ``reference`` and build the report record.

    Args:
        generated: what :func:`read_generated` (or :meth:`GeneratedSet.from_results`) gave.
        reference: a :class:`~crystens_core.data.CrystalDataset` (or a list of structures).
        metrics: metric name → instance.
        header: entries placed first in the record (command, generator, ...).
        symprec: spglib tolerance (Å) for the plotted space groups.
        stability_threshold: eV/atom, for the S.U.N. rate.
        on_metric: called with each metric's name before it runs.
        sun_sources: S.U.N. input → metric to take it from (see :func:`sun_inputs`).

    Returns:
        ``(record, details)``: the JSON-able record written to ``metrics.json`` and the
        per-structure arrays (metric name → side → name → array) including the ``structure``
        group of :func:`structure_property_arrays` (generated and reference).
    """
    from crystens_core import __version__

    reference_structures, reference_skipped = checked_reference(reference)
    evaluation = run_metrics(metrics, tensors=generated.tensors, structures=generated.structures, reference=reference_structures, stability_threshold=stability_threshold, on_metric=on_metric, sun_sources=sun_sources)
    details = dict(evaluation.details)
    known = _known_spacegroups(metrics, evaluation.details, symprec)  # a metric's space groups save the spglib calls
    details.setdefault(
        "structure",
        {
            "generated": structure_property_arrays(generated.structures, symprec, known.get("generated")),
            "reference": structure_property_arrays(reference_structures, symprec, known.get("reference")),
        },
    )
    record: dict[str, Any] = {
        **(header or {}),
        "crystens_version": __version__,
        "generated": {"source": generated.source, "kind": generated.kind, **generated.counts(), "settings": generated.settings},
        "reference": {"source": getattr(reference, "name", ""), "structures": len(reference_structures), "skipped": reference_skipped.total, "skipped_by_reason": dict(reference_skipped.counts)},
        "metrics": evaluation.figures,
        "sun": evaluation.sun,
        "sun_inputs": evaluation.sun_inputs,
        "sun_warnings": evaluation.sun_warnings,
        "metric_settings": metric_settings(metrics),
        "metric_seconds": evaluation.seconds,
        "detail_errors": evaluation.detail_errors,
        "skipped": issue_list(generated.skipped),
        "warnings": issue_list(generated.warnings),
        "settings": {"symprec": symprec, "stability_threshold_ev_per_atom": stability_threshold, "overlap_distance_angstrom": MIN_DISTANCE, "sun_sources": dict(sun_sources or {})},
        "details_file": "details.npz",
    }
    return record, details
