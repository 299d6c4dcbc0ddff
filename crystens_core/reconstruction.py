"""Shared steps of turning a raw CrysTens tensor back into a crystal (SPEC.md §2).

Decoders compose these: find the sites, average the repeated header copies,
combine absolute and relative (pair-block) coordinates, build and validate the
lattice, merge overlapping sites, and compute the self-consistency figures from
the tensor *before* any averaged value is written anywhere.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from crystens_core import layout

#: Smallest cell volume (Å³) a decoded lattice may have (CDVAE's structural validity).
MIN_VOLUME = 0.1


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


def check_tensor(tensor: np.ndarray) -> np.ndarray:
    """The tensor as float64 (C, S, S), or :class:`DecodingFailure` naming the problem."""
    tensor = np.asarray(tensor)
    if tensor.ndim != 3 or tensor.shape[1] != tensor.shape[2] or tensor.shape[0] < layout.BASE_CHANNELS:
        raise DecodingFailure(f"bad shape {tensor.shape}: expected (C ≥ 4, S, S)")
    if tensor.shape[-1] <= layout.SITE_OFFSET:
        raise DecodingFailure(f"tensor side {tensor.shape[-1]} is too small (needs > {layout.SITE_OFFSET})")
    base = np.asarray(tensor[: layout.BASE_CHANNELS], dtype=np.float64)
    if not np.isfinite(base).all():
        raise DecodingFailure("tensor holds NaN or infinite values")
    return base


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
    candidates = np.flatnonzero(copies[layout.Z].mean(axis=-1) >= 0.5)
    if not robust or candidates.size == 0:
        return candidates
    shared = copies[layout.A :].mean(axis=-1).T  # (M, 7)
    reference = np.abs(shared[candidates]).max(axis=0) + 1e-12
    score = np.clip(shared / reference, -1.0, 2.0).mean(axis=1)
    return np.flatnonzero(score >= 0.5)


@dataclass
class HeaderAverages:
    """Equal-weight averages of the repeated header copies of the occupied sites.

    Attributes:
        sites: slot indices of the sites, shape (A,).
        atomic_numbers: mean Z per site, (A,).
        coordinates: mean fractional coordinates per site, periodic mean, (A, 3).
        lattice: a, b, c (Å), α, β, γ (degrees), (6,).
        spacegroup: mean space group number (not rounded).
        variances: population variances of the copies (SPEC.md §2 Table 1).
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


def build_lattice(parameters: np.ndarray):
    """A pymatgen Lattice from a, b, c (Å), α, β, γ (degrees), or :class:`DecodingFailure`."""
    from pymatgen.core import Lattice

    a, b, c, alpha, beta, gamma = (float(v) for v in parameters)
    if min(a, b, c) <= 0:
        raise DecodingFailure(f"non-positive lattice length (a, b, c = {a:.3g}, {b:.3g}, {c:.3g} Å)")
    angles = np.array([alpha, beta, gamma])
    if (angles <= 0).any() or (angles >= 180).any():
        raise DecodingFailure(f"lattice angle outside (0°, 180°): {alpha:.3g}, {beta:.3g}, {gamma:.3g}")
    if angles.sum() >= 360 or (2 * angles.max() >= angles.sum()):
        raise DecodingFailure(f"angles {alpha:.3g}°, {beta:.3g}°, {gamma:.3g}° do not form a cell")
    lattice = Lattice.from_parameters(a, b, c, alpha, beta, gamma)
    if not np.isfinite(lattice.volume) or lattice.volume < MIN_VOLUME:
        raise DecodingFailure(f"cell volume {lattice.volume:.3g} Å³ is below {MIN_VOLUME} Å³")
    return lattice


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
    rounded = np.rint(numbers).astype(int)
    if rounded.min() < 1 or rounded.max() > 118:
        raise DecodingFailure(f"atomic number outside 1–118 (decoded {rounded.min()}…{rounded.max()})")
    return rounded


@functools.lru_cache(maxsize=None)
def _element(z: int):
    from pymatgen.core import Element

    return Element.from_Z(z)


def build_structure(lattice, numbers: np.ndarray, coordinates: np.ndarray):
    """A pymatgen Structure from rounded atomic numbers and fractional coordinates."""
    from pymatgen.core import Structure

    species = [_element(int(z)) for z in numbers]
    return Structure(lattice, species, coordinates, validate_proximity=False)


def symmetrize(structure, spacegroup: int, tolerances: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.3)):
    """The refined structure in ``spacegroup`` at the smallest tolerance (Å) where spglib
    finds it; the structure unchanged when none does."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    for symprec in tolerances:
        try:
            analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
            if analyzer.get_space_group_number() == spacegroup:
                return analyzer.get_refined_structure()
        except Exception:  # spglib failure at this tolerance: try the next
            continue
    return structure


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
