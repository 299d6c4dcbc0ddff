"""Shared steps of turning a raw CrysTens tensor back into a crystal (the paper's post-processing, Alverson et al. 2024).

Decoders compose these: find the sites, average the repeated header copies,
combine absolute and relative (pair-block) coordinates, build and validate the
lattice, merge overlapping sites, and compute the self-consistency figures from
the tensor *before* any averaged value is written anywhere.
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from crystens_core import layout
from crystens_core.structures import quiet_spglib

#: Smallest cell volume (Å³) a decoded lattice may have (CDVAE's structural validity).
MIN_VOLUME = 0.1

# Bounds of a crystal a decoder may report ok. The 31 169 real cells of MP-20,
# MPTS-52, Perov-5 and Carbon-24 span lengths 1.52–46.7 Å, angles 6.9–170.7°,
# V/(abc) ≥ 0.012, lattice-matrix condition numbers ≤ 21 and 5.4–896 Å³ per atom;
# each bound leaves a wide margin around that range. Inside them every decoded
# structure survives a CIF round trip (pymatgen's CifWriter, then its parser) with
# the same sites and lattice, and spglib answers in milliseconds.

#: Shortest lattice vector (Å): shorter puts an atom within 0.5 Å of its own image,
#: structurally invalid for CDVAE.
MIN_LENGTH = 0.5
#: Longest lattice vector (Å), 6× the longest in the data. Also keeps the CIF reader's
#: site tolerance (1e-4 in fractional units per axis) below :data:`MIN_SITE_DISTANCE`.
MAX_LENGTH = 300.0
#: Smallest and largest lattice angle (degrees).
MIN_ANGLE, MAX_ANGLE = 2.0, 178.0
#: Smallest V / (a·b·c), the volume of the cell relative to a cube with the same edge
#: lengths (1 for a right-angled cell, 0 for a flat one).
MIN_FLATNESS = 1e-3
#: Largest condition number of the lattice matrix (fractional ↔ Cartesian conversion).
MAX_CONDITION = 1e4
#: Volume per atom (Å³), after merging overlapping sites.
MIN_VOLUME_PER_ATOM, MAX_VOLUME_PER_ATOM = 1.0, 1e4
#: Distinct sites closer than this (Å) are one place: a CIF reader merges them.
MIN_SITE_DISTANCE = 0.1
#: Largest magnitude of a tensor entry the decoder reads (Å, degrees, Z, fractional
#: units, space-group number); real tensors stay below 1e3, and beyond this averaging
#: could overflow.
MAX_ENTRY = 1e6
#: Wall-clock budget (s) of ``snap_to_spacegroup`` across all its tolerances.
SNAP_TIME_BUDGET = 0.5
#: Most sites a structure may have for ``snap_to_spacegroup`` (8 × the 52 of MPTS-52).
SNAP_MAX_SITES = 416
#: spglib tolerances must stay below this fraction of the shortest distance between
#: atoms (periodic images included): near it spglib's cost grows steeply (0.5 s per
#: call at 0.3 Å on a cell with a 0.58 Å vector) and neighbours count as one atom.
SNAP_TOLERANCE_FRACTION = 0.25


class DecodingFailure(Exception):
    """Raised inside a decoder for a tensor that cannot become a structure."""


def wrap(delta: np.ndarray) -> np.ndarray:
    """Periodic differences in fractional units, mapped into [−0.5, 0.5)."""
    return delta - np.floor(delta + 0.5)


def to_unit_cell(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates mapped into [0, 1)."""
    frac = frac - np.floor(frac)
    frac[frac >= 1.0] = 0.0
    return frac


def _describe(tensor) -> str:
    """What a non-array input is, for a failure reason."""
    return f"a {type(tensor).__name__}"


def check_tensor(tensor) -> np.ndarray:
    """The base channels as float64 (4, S, S), or :class:`DecodingFailure` naming the problem.

    Accepts integer and floating-point arrays of shape (C ≥ 4, S, S), S > 12; refuses
    complex (the imaginary part would be dropped), bool, object, string and other
    dtypes, and other shapes. Values are not checked here: only the entries a decoder
    reads must be finite (:func:`check_site_entries`), so NaN in padding is harmless.
    """
    try:
        array = np.asarray(tensor)
    except Exception as exc:  # ragged lists and the like
        raise DecodingFailure(f"input is not an array ({_describe(tensor)}: {exc})") from None
    if array.dtype.kind not in "iuf":
        why = " (the imaginary part would be lost)" if array.dtype.kind == "c" else ""
        what = f"tensor dtype {array.dtype}" if isinstance(tensor, np.ndarray) else f"input ({_describe(tensor)}, read as dtype {array.dtype})"
        raise DecodingFailure(f"{what} is refused{why}: expected real numbers (float or int)")
    if array.ndim != 3 or array.shape[1] != array.shape[2] or array.shape[0] < layout.BASE_CHANNELS:
        hint = "; a batch? use decode_batch" if array.ndim == 4 else ""
        raise DecodingFailure(f"bad shape {array.shape}: expected (C ≥ {layout.BASE_CHANNELS}, S, S){hint}")
    if array.shape[-1] <= layout.SITE_OFFSET:
        raise DecodingFailure(f"tensor side {array.shape[-1]} is too small (needs > {layout.SITE_OFFSET})")
    return np.asarray(array[: layout.BASE_CHANNELS], dtype=np.float64)


def check_site_entries(tensor: np.ndarray, sites: np.ndarray) -> None:
    """:class:`DecodingFailure` unless every entry read for ``sites`` (their header copies
    and their pair block) is finite and within ±:data:`MAX_ENTRY`; names the first bad one."""
    copies = layout.header_copies(tensor, sites)  # (11, A, 8)
    index = layout.SITE_OFFSET + sites
    pairs = tensor[:, index][:, :, index]  # (4, A, A)
    for values, where in ((copies, "header"), (pairs, "pair block")):
        bad = ~np.isfinite(values) | (np.abs(values) > MAX_ENTRY)
        if not bad.any():
            continue
        first = tuple(np.argwhere(bad)[0])
        value = float(values[first])
        if where == "header":
            place = f"site {int(sites[first[1]])}, field {layout.HEADER_FIELDS[first[0]]}"
        else:
            place = f"channel {first[0]}, sites {int(sites[first[1]])} and {int(sites[first[2]])}"
        problem = "NaN or infinite" if not np.isfinite(value) else f"{value:.3g}, beyond ±{MAX_ENTRY:.0e}"
        raise DecodingFailure(f"tensor {where} entry is {problem} ({place}; {int(bad.sum())} such entries)")


def find_sites(tensor: np.ndarray, *, robust: bool = False) -> np.ndarray:
    """Indices of the occupied site slots.

    Plain: a slot is a site when its mean Z rounds to at least 1. Robust: a slot is
    a site when its shared header (a, b, c, α, β, γ, space group) looks like the
    crystal's rather than like zero padding: per field, the slot's mean divided by
    the largest mean among the Z ≥ 0.5 slots averages to at least one half. Noise
    in empty rows then creates no sites, and a hydrogen whose noisy Z fell below
    0.5 is still found.
    """
    copies = layout.header_copies(tensor)
    # Non-finite copies are ignored here (a NaN in padding makes no site);
    # check_site_entries then refuses any the sites themselves hold.
    copies = np.where(np.isfinite(copies), copies, np.nan)
    with np.errstate(all="ignore"), _quiet():
        candidates = np.flatnonzero(np.nanmean(copies[layout.Z], axis=-1) >= 0.5)
        if not robust or candidates.size == 0:
            return candidates
        shared = np.nanmean(copies[layout.A :], axis=-1).T  # (M, 7)
        reference = np.nan_to_num(np.nanmax(np.abs(shared[candidates]), axis=0)) + 1e-12
        score = np.nanmean(np.clip(shared / reference, -1.0, 2.0), axis=1)
    return np.flatnonzero(score >= 0.5)


def no_sites_reason(tensor: np.ndarray) -> str:
    """Why :func:`find_sites` found no site in ``tensor``, naming slots whose Z copies are unreadable."""
    z_copies = layout.header_copies(tensor)[layout.Z]  # (M, 8)
    unreadable = int((~np.isfinite(z_copies)).any(axis=1).sum())
    if unreadable:
        return f"no sites: {unreadable} of {z_copies.shape[0]} site slots hold NaN or infinite Z values, the rest mean Z < 0.5"
    return "no sites: every site slot has mean Z < 0.5"


@contextmanager
def _quiet():
    """Silence Python warnings (all-NaN means and the like) inside the block."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass
class HeaderAverages:
    """Equal-weight averages of the repeated header copies of the occupied sites.

    Attributes:
        sites: slot indices of the sites, shape (A,).
        atomic_numbers: mean Z per site, (A,).
        coordinates: mean fractional coordinates per site, periodic mean, (A, 3).
        lattice: a, b, c (Å), α, β, γ (degrees), (6,).
        spacegroup: mean space group number (not rounded).
        variances: population variances of the copies (the paper's Table 1).
    """

    sites: np.ndarray
    atomic_numbers: np.ndarray
    coordinates: np.ndarray
    lattice: np.ndarray
    spacegroup: float
    variances: dict[str, float]


def average_header(tensor: np.ndarray, sites: np.ndarray) -> HeaderAverages:
    """Average the 8 copies per site and the 8·A copies of the shared fields."""
    copies = layout.header_copies(tensor, sites)  # (11, A, 8)
    shared = copies[layout.A :].reshape(7, -1)  # every copy of a, b, c, α, β, γ, sg
    coordinate_copies = copies[layout.COORDINATES]  # (3, A, 8)
    reference = coordinate_copies[..., :1]
    coordinates = to_unit_cell(reference[..., 0] + wrap(coordinate_copies - reference).mean(axis=-1)).T
    variances = {
        "var_lattice_lengths": float(shared[0:3].var(axis=1).mean()),
        "var_angles": float(shared[3:6].var(axis=1).mean()),
        "var_spacegroup": float(shared[6].var()),
        "var_coordinates": float(coordinate_copies.var(axis=-1).mean()),
        "var_atomic_numbers": float(copies[layout.Z].var(axis=-1).mean()),
    }
    return HeaderAverages(
        sites=sites,
        atomic_numbers=copies[layout.Z].mean(axis=-1),
        coordinates=coordinates,
        lattice=shared[:6].mean(axis=1),
        spacegroup=float(shared[6].mean()),
        variances=variances,
    )


def pair_differences(tensor: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """(A, A, 3) estimate of f_i − f_j from channels 1–3, antisymmetrised with equal weights."""
    index = layout.SITE_OFFSET + sites
    block = tensor[1 : layout.BASE_CHANNELS][:, index][:, :, index].transpose(1, 2, 0)
    return 0.5 * (block - block.transpose(1, 0, 2))


def combine_coordinates(own: np.ndarray, differences: np.ndarray) -> tuple[np.ndarray, float]:
    """Fig. 3 of the paper: average each site's own coordinate with the A − 1 guesses
    ``f_j + (f_i − f_j)`` of the other sites, equal weights, periodic.

    Returns:
        ``(coordinates, delta_per_atom)``: the combined (A, 3) coordinates in [0, 1)
        and ΔCoordinate/atom, the mean |own − relative| over sites and axes, where
        the relative coordinate averages only the other sites' guesses.
    """
    n_sites = own.shape[0]
    guesses = own[None, :, :] + differences  # guesses[i, j] = f_j + (f_i − f_j)
    offsets = wrap(guesses - own[:, None, :])  # zero on the diagonal
    combined = to_unit_cell(own + offsets.mean(axis=1))
    if n_sites == 1:
        return combined, 0.0
    relative_offset = offsets.sum(axis=1) / (n_sites - 1)
    return combined, float(np.abs(wrap(relative_offset)).mean())


def check_lattice_parameters(parameters: np.ndarray) -> None:
    """:class:`DecodingFailure` unless a, b, c (Å) and α, β, γ (degrees) are within the
    bounds above and make a cell that is neither flat nor ill-conditioned."""
    a, b, c, alpha, beta, gamma = (float(v) for v in parameters)
    lengths, angles = np.array([a, b, c]), np.array([alpha, beta, gamma])
    shown = f"a, b, c = {a:.4g}, {b:.4g}, {c:.4g} Å; α, β, γ = {alpha:.6g}°, {beta:.6g}°, {gamma:.6g}°"
    if not np.isfinite(np.r_[lengths, angles]).all():
        raise DecodingFailure(f"lattice parameters are not finite ({shown})")
    if lengths.min() <= 0:
        raise DecodingFailure(f"non-positive lattice length ({shown})")
    if lengths.min() < MIN_LENGTH:
        raise DecodingFailure(f"lattice length {lengths.min():.3g} Å is below {MIN_LENGTH} Å ({shown})")
    if lengths.max() > MAX_LENGTH:
        raise DecodingFailure(f"lattice length {lengths.max():.3g} Å is above {MAX_LENGTH:g} Å ({shown})")
    if (angles <= 0).any() or (angles >= 180).any():
        raise DecodingFailure(f"lattice angle outside (0°, 180°): {alpha:.3g}, {beta:.3g}, {gamma:.3g}")
    if angles.min() < MIN_ANGLE or angles.max() > MAX_ANGLE:
        raise DecodingFailure(f"lattice angle within {MIN_ANGLE:g}° of 0° or 180° ({shown})")
    if angles.sum() >= 360 or (2 * angles.max() >= angles.sum()):
        raise DecodingFailure(f"angles {alpha:.3g}°, {beta:.3g}°, {gamma:.3g}° do not form a cell")
    cosines = np.cos(np.radians(angles))
    flatness = float(np.sqrt(max(1 - (cosines**2).sum() + 2 * cosines.prod(), 0.0)))
    if flatness < MIN_FLATNESS:
        raise DecodingFailure(f"cell is flat: V/(abc) = {flatness:.2g} < {MIN_FLATNESS:g} ({shown})")


def build_lattice(parameters: np.ndarray):
    """A pymatgen Lattice from a, b, c (Å), α, β, γ (degrees), or :class:`DecodingFailure`
    (see :func:`check_lattice_parameters`)."""
    from pymatgen.core import Lattice

    check_lattice_parameters(parameters)
    lattice = Lattice.from_parameters(*(float(v) for v in parameters))
    check_lattice(lattice)
    return lattice


def check_lattice(lattice) -> None:
    """:class:`DecodingFailure` unless a built lattice has volume ≥ :data:`MIN_VOLUME` and a
    condition number ≤ :data:`MAX_CONDITION`."""
    if not np.isfinite(lattice.volume) or lattice.volume < MIN_VOLUME:
        raise DecodingFailure(f"cell volume {lattice.volume:.3g} Å³ is below {MIN_VOLUME} Å³")
    condition = float(np.linalg.cond(lattice.matrix))
    if not condition <= MAX_CONDITION:
        raise DecodingFailure(f"lattice matrix is ill-conditioned (condition number {condition:.3g} > {MAX_CONDITION:g})")
    # a, b, c can all be long while a combination of them is short (three ~120° angles):
    # the LLL-reduced cell shows the lattice's short vectors.
    shortest = min(lattice.get_lll_reduced_lattice().abc)
    if shortest < MIN_LENGTH:
        raise DecodingFailure(f"the lattice has a vector of {shortest:.3g} Å (after LLL reduction), below {MIN_LENGTH} Å: atoms sit that close to their own images")


def check_structure(structure) -> None:
    """:class:`DecodingFailure` unless a finished structure is a sane crystal: lattice within
    bounds, :data:`MIN_VOLUME_PER_ATOM`–:data:`MAX_VOLUME_PER_ATOM` Å³ per atom, and no two
    sites closer than :data:`MIN_SITE_DISTANCE` Å (periodic images included)."""
    lattice = structure.lattice
    check_lattice_parameters(np.r_[lattice.abc, lattice.angles])
    check_lattice(lattice)
    per_atom = lattice.volume / len(structure)
    if not MIN_VOLUME_PER_ATOM <= per_atom <= MAX_VOLUME_PER_ATOM:
        raise DecodingFailure(f"volume per atom {per_atom:.3g} Å³ is outside {MIN_VOLUME_PER_ATOM:g}–{MAX_VOLUME_PER_ATOM:g} Å³ ({len(structure)} sites in {lattice.volume:.4g} Å³)")
    if len(structure) > 1:
        distances = lattice.get_all_distances(structure.frac_coords, structure.frac_coords)
        np.fill_diagonal(distances, np.inf)
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        if distances[i, j] < MIN_SITE_DISTANCE:
            raise DecodingFailure(f"sites {min(i, j)} and {max(i, j)} are {distances[i, j]:.3g} Å apart (< {MIN_SITE_DISTANCE} Å): one place; a larger merge_tolerance merges them")


def pairwise_per_atom(tensor: np.ndarray, sites: np.ndarray, coordinates: np.ndarray, matrix: np.ndarray, distance: str) -> float:
    """ΣPairwise/atom: Σ_ij |D_tensor − D_decoded| / A, with D computed as channel 0 is."""
    index = layout.SITE_OFFSET + sites
    stored = tensor[0][np.ix_(index, index)]
    _, decoded = layout.pair_vectors(coordinates, matrix, distance)
    return float(np.abs(stored - decoded).sum() / len(sites))


def merge_overlapping(numbers: np.ndarray, coordinates: np.ndarray, lattice, tolerance: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge sites closer than ``tolerance`` Å (periodic images included).

    Each group of overlapping sites becomes one site at their periodic mean
    position, with the most common atomic number of the group (ties: the first).

    Returns:
        ``(numbers, coordinates, n_merged)``.
    """
    if len(numbers) < 2 or tolerance <= 0:
        return numbers, coordinates, 0
    distances = lattice.get_all_distances(coordinates, coordinates)
    close = distances < tolerance
    np.fill_diagonal(close, False)
    if not close.any():
        return numbers, coordinates, 0
    from scipy.sparse.csgraph import connected_components

    n_groups, labels = connected_components(close, directed=False)
    merged_numbers = np.empty(n_groups, dtype=numbers.dtype)
    merged_coordinates = np.empty((n_groups, 3))
    for group in range(n_groups):
        members = np.flatnonzero(labels == group)
        values, counts = np.unique(numbers[members], return_counts=True)
        merged_numbers[group] = values[np.argmax(counts)] if len(values) > 1 else values[0]
        anchor = coordinates[members[0]]
        merged_coordinates[group] = anchor + wrap(coordinates[members] - anchor).mean(axis=0)
    return merged_numbers, to_unit_cell(merged_coordinates), len(numbers) - n_groups


def check_atomic_numbers(numbers: np.ndarray) -> np.ndarray:
    """Rounded atomic numbers as ints, or :class:`DecodingFailure` if any is outside 1–118."""
    rounded = np.rint(numbers)
    if not np.isfinite(rounded).all() or rounded.min() < 1 or rounded.max() > 118:
        raise DecodingFailure(f"atomic number outside 1–118 (decoded {rounded.min():.4g}…{rounded.max():.4g})")
    return rounded.astype(int)


def rounded_spacegroup(value: float) -> int | None:
    """The space-group number nearest ``value``, or None outside 1–230 (or not finite)."""
    if not np.isfinite(value):
        return None
    number = round(value)
    return number if 1 <= number <= 230 else None


@functools.lru_cache(maxsize=None)
def _element(z: int):
    from pymatgen.core import Element

    return Element.from_Z(z)


def build_structure(lattice, numbers: np.ndarray, coordinates: np.ndarray):
    """A pymatgen Structure from rounded atomic numbers and fractional coordinates."""
    from pymatgen.core import Structure

    species = [_element(int(z)) for z in numbers]
    return Structure(lattice, species, coordinates, validate_proximity=False)


def symmetrize(structure, spacegroup: int, tolerances: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.3), budget: float = SNAP_TIME_BUDGET):
    """The refined structure in ``spacegroup`` at the smallest tolerance (Å) where spglib
    finds it and the result is a sane crystal (:func:`check_structure`). Tolerances of
    :data:`SNAP_TOLERANCE_FRACTION` × the shortest interatomic distance or more are skipped.

    Returns:
        ``(structure, note)``: the refined structure and None, or the structure
        unchanged and why (not found, too many sites, or the ``budget`` of seconds
        spent before the next tolerance). spglib stays silent.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    if len(structure) > SNAP_MAX_SITES:
        return structure, f"not snapped to space group {spacegroup}: {len(structure)} sites > {SNAP_MAX_SITES}"
    start = time.perf_counter()
    reduced = structure.get_reduced_structure("LLL")  # short, near-orthogonal vectors help spglib too
    distances = reduced.lattice.get_all_distances(reduced.frac_coords, reduced.frac_coords)
    np.fill_diagonal(distances, np.inf)
    shortest = min(float(distances.min()), min(reduced.lattice.abc))
    usable = [symprec for symprec in tolerances if symprec < SNAP_TOLERANCE_FRACTION * shortest]
    if not usable:
        return structure, f"not snapped to space group {spacegroup}: atoms {shortest:.3g} Å apart leave no tolerance below {SNAP_TOLERANCE_FRACTION:g} × that"
    found_insane = None
    with quiet_spglib():  # also silences Python warnings
        for symprec in usable:
            if time.perf_counter() - start > budget:
                return structure, f"not snapped to space group {spacegroup}: time budget {budget:g} s spent before tolerance {symprec:g} Å"
            try:
                # angle_tolerance=-1: spglib's own criterion. pymatgen's default 5° made
                # single calls take 2–70 s on skewed or near-degenerate cells (0.5 ms with −1).
                analyzer = SpacegroupAnalyzer(reduced, symprec=symprec, angle_tolerance=-1)
                if analyzer.get_space_group_number() != spacegroup:
                    continue
                refined = analyzer.get_refined_structure()
                check_structure(refined)
                return refined, None
            except DecodingFailure as exc:
                found_insane = f"not snapped to space group {spacegroup}: the refined cell at {symprec:g} Å is not sane ({exc})"
            except Exception:  # spglib failure at this tolerance: try the next
                continue
    return structure, found_insane or f"not snapped to space group {spacegroup}: spglib does not find it at tolerances up to {max(usable):g} Å"


def cluster_periodic_span(values: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy periodic 1-D clusters of span ≤ ``width`` (fractional units).

    The circle is cut at its widest gap, then clusters are grown from the left.

    Returns:
        ``(labels, centres)``: a label per value and each cluster's mean in [0, 1).
    """
    n = len(values)
    order = np.argsort(values)
    ordered = values[order]
    gaps = np.diff(np.concatenate([ordered, ordered[:1] + 1.0]))
    start = (int(np.argmax(gaps)) + 1) % n
    unrolled = np.concatenate([ordered[start:], ordered[:start] + 1.0])
    sorted_labels = np.empty(n, dtype=int)
    label, anchor = 0, unrolled[0]
    for position, value in enumerate(unrolled):
        if value - anchor > width:
            label, anchor = label + 1, value
        sorted_labels[position] = label
    centres = np.bincount(sorted_labels, weights=unrolled) / np.bincount(sorted_labels)
    labels = np.empty(n, dtype=int)
    labels[order[np.r_[start:n, 0:start]]] = sorted_labels
    return labels, to_unit_cell(centres)


def cluster_integers(values: np.ndarray, sigma: float, penalty: float) -> np.ndarray:
    """Group noisy estimates of integers (atomic numbers) by penalised likelihood.

    Start from one cluster per value (sorted) and repeatedly merge the two
    neighbouring clusters whose merge raises the misfit Σ (v − round(mean))² / σ²
    least, while that rise stays below ``penalty`` (a BIC-like price per distinct
    value). With σ → 0 only equal values merge; with noise, sites of one element
    share one rounded value, as the paper's k-means intended, but K is chosen here.

    Args:
        values: averaged atomic numbers, (A,).
        sigma: standard error of each value (atomic-number units), > 0.
        penalty: price of one more distinct value, in units of χ².

    Returns:
        The rounded integer assigned to each value, (A,).
    """
    order = np.argsort(values)
    ordered = values[order]
    first = np.r_[0.0, np.cumsum(ordered)]
    second = np.r_[0.0, np.cumsum(ordered * ordered)]

    def misfit(begin: np.ndarray, end: np.ndarray) -> np.ndarray:
        count = end - begin
        total = first[end] - first[begin]
        nearest = np.rint(total / count)
        return (second[end] - second[begin] - 2 * nearest * total + count * nearest**2) / sigma**2

    # Groups are runs [bounds[k], bounds[k + 1]) of the sorted values; equal values start together.
    bounds = np.r_[np.flatnonzero(np.r_[True, np.diff(ordered) > 1e-9]), len(ordered)]
    while len(bounds) > 2:
        rises = misfit(bounds[:-2], bounds[2:]) - misfit(bounds[:-2], bounds[1:-1]) - misfit(bounds[1:-1], bounds[2:])
        best = int(np.argmin(rises))
        if rises[best] >= penalty:
            break
        bounds = np.delete(bounds, best + 1)
    sizes = np.diff(bounds)
    means = (first[bounds[1:]] - first[bounds[:-1]]) / sizes
    assigned = np.empty(len(values))
    assigned[order] = np.repeat(np.rint(means), sizes)
    return assigned
