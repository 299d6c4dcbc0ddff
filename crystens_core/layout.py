"""The CrysTens tensor layout (Alverson et al., Digital Discovery 2024), shared by encoders, decoders and layers.

A crystal with A ≤ ``max_sites`` sites is a float32 array of shape (C, S, S),
S = 12 + max_sites, channels first:

* rows/columns 0–10 are the header: for site i, ``T[c, k, 12+i]`` and, mirrored,
  ``T[c, 12+i, k]`` hold field k of :data:`HEADER_FIELDS` in all four base channels
  (Z; fractional x, y, z; a, b, c in Å; α, β, γ in degrees; space group number);
* row/column 11 and the top-left 12 × 12 block are zero;
* the pair block ``T[:, 12+i, 12+j]`` holds, in channel 0, the distance between
  sites i and j (Å, of the in-cell difference vector, or the norm of the
  fractional difference in the authors' convention) and, in channels 1–3, the
  signed fractional differences x_i − x_j, y_i − y_j, z_i − z_j;
* empty sites are zero everywhere; channels 4+ are optional extra layers.
"""

from __future__ import annotations

import numpy as np

HEADER_FIELDS: tuple[str, ...] = ("Z", "x", "y", "z", "a", "b", "c", "alpha", "beta", "gamma", "spacegroup")
PAIR_FIELDS: tuple[str, ...] = ("distance", "dx", "dy", "dz")
N_HEADER = len(HEADER_FIELDS)
SITE_OFFSET = 12
BASE_CHANNELS = 4
DISTANCE_CONVENTIONS = ("cartesian", "fractional")

# Header field indices.
Z, X, Y, ZC, A, B, C, ALPHA, BETA, GAMMA, SPACEGROUP = range(N_HEADER)
COORDINATES = slice(X, ZC + 1)
LENGTHS = slice(A, C + 1)
ANGLES = slice(ALPHA, GAMMA + 1)


def size_for(max_sites: int) -> int:
    """Side length S of the tensor for at most ``max_sites`` sites."""
    if int(max_sites) != max_sites or max_sites < 1:
        raise ValueError(f"max_sites must be a positive integer, got {max_sites!r}")
    return SITE_OFFSET + int(max_sites)


def max_sites_for(size: int) -> int:
    """Inverse of :func:`size_for`."""
    if size <= SITE_OFFSET:
        raise ValueError(f"tensor side {size} is too small for the CrysTens layout (needs > {SITE_OFFSET})")
    return size - SITE_OFFSET


def pair_vectors(frac: np.ndarray, matrix: np.ndarray, distance: str = "cartesian") -> tuple[np.ndarray, np.ndarray]:
    """Signed fractional differences and distances of every site pair, channels first.

    Args:
        frac: (..., A, 3) fractional coordinates.
        matrix: (..., 3, 3) lattice matrices, rows are the lattice vectors in Å.
        distance: "cartesian" (Å, |(f_i − f_j) · L|) or "fractional" (|f_i − f_j|).

    Returns:
        ``(diff, dist)``: (..., 3, A, A) with ``diff[k, i, j] = f_i[k] − f_j[k]`` and
        (..., A, A) distances. One (A, A) plane per axis, no (A, A, 3) temporaries.
    """
    if distance not in DISTANCE_CONVENTIONS:
        raise ValueError(f"distance must be one of {DISTANCE_CONVENTIONS}, got {distance!r}")
    cart = frac @ matrix if distance == "cartesian" else frac  # L·(f_i − f_j) = L·f_i − L·f_j
    diff = np.stack([frac[..., :, None, axis] - frac[..., None, :, axis] for axis in range(3)], axis=-3)
    squared = sum((cart[..., :, None, axis] - cart[..., None, :, axis]) ** 2 for axis in range(3))
    return diff, np.sqrt(squared)


def fill_base_channels(
    out: np.ndarray,
    header: np.ndarray,
    frac: np.ndarray,
    matrix: np.ndarray,
    mask: np.ndarray,
    distance: str = "cartesian",
) -> None:
    """Write the four base channels of a batch into ``out`` (assumed zeroed).

    Args:
        out: (N, C ≥ 4, S, S) array to fill.
        header: (N, M, 11) header values per site (M = S − 12), zero for empty sites.
        frac: (N, M, 3) fractional coordinates, zero for empty sites.
        matrix: (N, 3, 3) lattice matrices in Å.
        mask: (N, M) boolean, True for occupied sites.
        distance: see :func:`pair_vectors`.
    """
    site = slice(SITE_OFFSET, out.shape[-1])
    header_t = header.transpose(0, 2, 1)  # (N, 11, M)
    out[:, :BASE_CHANNELS, :N_HEADER, site] = header_t[:, None]
    out[:, :BASE_CHANNELS, site, :N_HEADER] = header[:, None]
    diff, dist = pair_vectors(frac, matrix, distance)
    pair_mask = mask[:, :, None] & mask[:, None, :]
    out[:, 1:BASE_CHANNELS, site, site] = np.where(pair_mask[:, None], diff, 0.0)
    out[:, 0, site, site] = np.where(pair_mask, dist, 0.0)


def site_channel(site_values: np.ndarray, pair_values: np.ndarray | None, max_sites: int, field: int = Z) -> np.ndarray:
    """One (S, S) layer channel from per-site and per-pair values.

    The site values go to header slot ``field`` (mirrored, as the base channels do)
    and the pair values into the pair block; everything else is zero.

    Args:
        site_values: (A,) values, one per site.
        pair_values: (A, A) values or None.
        max_sites: the encoder's ``max_sites``.
        field: header slot (0–10) for the site values.
    """
    site_values = np.asarray(site_values, dtype=np.float32)
    n_sites = site_values.shape[0]
    if n_sites > max_sites:
        raise ValueError(f"{n_sites} sites do not fit in max_sites={max_sites}")
    size = size_for(max_sites)
    channel = np.zeros((size, size), dtype=np.float32)
    rows = slice(SITE_OFFSET, SITE_OFFSET + n_sites)
    channel[field, rows] = site_values
    channel[rows, field] = site_values
    if pair_values is not None:
        channel[rows, rows] = np.asarray(pair_values, dtype=np.float32).reshape(n_sites, n_sites)
    return channel


def field_names(channels: int) -> list[str]:
    """Names of the scaling fields of a tensor with ``channels`` channels."""
    names = list(HEADER_FIELDS) + list(PAIR_FIELDS)
    for channel in range(BASE_CHANNELS, channels):
        names += [f"channel{channel}_header", f"channel{channel}_pair"]
    return names


def field_index_map(channels: int, size: int) -> np.ndarray:
    """(C, S, S) int array: the index into :func:`field_names` of every entry, −1 where always zero."""
    max_sites_for(size)
    fields = np.full((channels, size, size), -1, dtype=np.int16)
    site = slice(SITE_OFFSET, size)
    n_base = len(HEADER_FIELDS)
    for channel in range(channels):
        if channel < BASE_CHANNELS:
            for k in range(N_HEADER):
                fields[channel, k, site] = k
                fields[channel, site, k] = k
            fields[channel, site, site] = n_base + channel
        else:
            offset = n_base + len(PAIR_FIELDS) + 2 * (channel - BASE_CHANNELS)
            fields[channel, :N_HEADER, site] = offset
            fields[channel, site, :N_HEADER] = offset
            fields[channel, site, site] = offset + 1
    return fields


def header_copies(tensor: np.ndarray, sites: np.ndarray | slice | None = None) -> np.ndarray:
    """Every stored copy of every header field, per site.

    Args:
        tensor: (C ≥ 4, S, S) raw tensor.
        sites: indices (0-based) of the sites to read; all sites when None.

    Returns:
        (11, A, 8) array: for each field and site, the 4 channels of the row
        copy followed by the 4 channels of the column copy.
    """
    size = tensor.shape[-1]
    index = np.arange(SITE_OFFSET, size) if sites is None else SITE_OFFSET + np.arange(size - SITE_OFFSET)[sites]
    base = tensor[:BASE_CHANNELS]
    row_copies = base[:, :N_HEADER][:, :, index]  # (4, 11, A): T[c, k, 12+i]
    col_copies = base[:, index][:, :, :N_HEADER].transpose(0, 2, 1)  # (4, 11, A): T[c, 12+i, k]
    return np.concatenate([row_copies, col_copies], axis=0).transpose(1, 2, 0)
