"""The layout helpers shared by every encoder, decoder and layer."""

import numpy as np
import pytest

from crystens_core import layout


def test_sizes():
    assert layout.size_for(52) == 64 and layout.max_sites_for(64) == 52
    with pytest.raises(ValueError):
        layout.size_for(2.5)
    with pytest.raises(ValueError):
        layout.max_sites_for(12)


def test_field_map_covers_header_and_pairs_only():
    fields = layout.field_index_map(5, 16)  # 4 sites, one extra channel
    names = layout.field_names(5)
    assert names[fields[0, layout.Z, 12]] == "Z" and names[fields[2, 13, layout.GAMMA]] == "gamma"
    assert names[fields[3, 12, 15]] == "dz" and names[fields[0, 14, 13]] == "distance"
    assert names[fields[4, 12, 13]] == "channel4_pair" and names[fields[4, 0, 12]] == "channel4_header"
    assert (fields[:, :12, :12] == -1).all() and (fields[:, 11, :] == -1).all()


def test_header_copies_reads_rows_and_columns():
    tensor = np.zeros((4, 14, 14))
    tensor[:, layout.X, 12] = [1, 2, 3, 4]  # row copies of site 0
    tensor[:, 12, layout.X] = [5, 6, 7, 8]  # column copies
    copies = layout.header_copies(tensor)
    assert copies.shape == (11, 2, 8)
    assert list(copies[layout.X, 0]) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_site_channel_places_values():
    channel = layout.site_channel([1.5, 2.5], [[0, -1], [1, 0]], max_sites=4)
    assert channel.shape == (16, 16) and channel.dtype == np.float32
    assert channel[0, 13] == channel[13, 0] == 2.5
    assert channel[12, 13] == -1 and channel[13, 12] == 1
    with pytest.raises(ValueError, match="do not fit"):
        layout.site_channel(np.ones(5), None, max_sites=4)


def test_pair_vectors_conventions():
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    matrix = np.diag([4.0, 5.0, 6.0])
    diff, dist = layout.pair_vectors(frac, matrix)
    assert dist[0, 1] == pytest.approx(2.0) and diff[0, 0, 1] == -0.5  # axis x, pair (0, 1)
    _, fractional = layout.pair_vectors(frac, matrix, "fractional")
    assert fractional[0, 1] == pytest.approx(0.5)
