"""The self-consistency metric (the paper's Tables 1 and 2)."""

import numpy as np
import pytest

from crystens_core import get_metric, layout


def test_clean_tensors_are_perfectly_consistent(mp20_tensors):
    values = get_metric("self-consistency").compute(tensors=mp20_tensors[:100])
    assert values["decoded_fraction"] == 1.0 and values["n_tensors"] == 100.0
    for name in ("var_lattice_lengths", "var_angles", "var_spacegroup", "var_coordinates", "var_atomic_numbers"):
        assert values[name] < 1e-8, name
    assert values["delta_coordinate_per_atom"] < 1e-6
    assert values["pairwise_per_atom"] < 1e-3


def test_noise_shows_up_in_every_figure(mp20_tensors):
    rng = np.random.default_rng(0)
    sigma = 0.02
    fields = layout.field_index_map(4, 64)
    clean = mp20_tensors[:50]
    header_or_site = np.ones((len(clean), 64), bool)
    header_or_site[:, 12:] = clean[:, 0, layout.Z, 12:] > 0  # site slots in use
    in_use = (header_or_site[:, :, None] & header_or_site[:, None, :])[:, None] & (fields >= 0)
    noisy = clean + (rng.normal(0, sigma, clean.shape) * in_use).astype(np.float32)
    values = get_metric("self-consistency").compute(tensors=noisy)
    assert values["var_lattice_lengths"] == pytest.approx(sigma**2, rel=0.2)
    assert values["var_angles"] == pytest.approx(sigma**2, rel=0.2)
    assert values["var_coordinates"] == pytest.approx(sigma**2, rel=0.2)
    assert values["delta_coordinate_per_atom"] > 1e-3 and values["pairwise_per_atom"] > 1e-2


def test_failed_tensors_lower_the_decoded_fraction(mp20_tensors):
    batch = mp20_tensors[:4].copy()
    batch[0] = np.nan
    values = get_metric("self-consistency", decoder="paper").compute(tensors=batch)
    assert values["decoded_fraction"] == 0.75 and values["n_tensors"] == 4.0
