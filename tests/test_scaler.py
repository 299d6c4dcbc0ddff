"""The per-field scaler: exact inverse, ranges, persistence, errors."""

import json

import numpy as np
import pytest

from crystens_core import layout
from crystens_core.scaler import FieldScaler


@pytest.fixture(scope="module")
def scaler(mp20_tensors):
    return FieldScaler().fit(mp20_tensors)


def test_round_trip(scaler, mp20_tensors, mpts52_tensors):
    for tensors in (mp20_tensors, mpts52_tensors):
        back = scaler.unscale(scaler.scale(tensors))
        np.testing.assert_allclose(back, tensors, rtol=1e-6, atol=1e-5)


def test_training_data_maps_into_the_feature_range(scaler, mp20_tensors):
    scaled = scaler.scale(mp20_tensors)
    assert scaled.min() >= -1e-6 and scaled.max() <= 1 + 1e-6
    fields = layout.field_index_map(4, 64)
    for index, name in enumerate(layout.field_names(4)):
        values = scaled[:, fields == index]
        assert values.max() == pytest.approx(1.0, abs=1e-6), name  # each field reaches the top


def test_fitted_ranges_are_the_data_ranges(scaler, mp20_sample):
    ranges = scaler.to_dict()["fields"]
    assert ranges["Z"] == [0.0, max(max(s.atomic_numbers) for s in mp20_sample)]
    assert ranges["spacegroup"][1] == max(mp20_sample.spacegroups)
    assert ranges["dx"][0] < -0.5 < 0.5 < ranges["dx"][1]
    assert ranges["a"][1] == pytest.approx(max(s.lattice.a for s in mp20_sample), rel=1e-6)


def test_padding_of_positive_fields_stays_zero(scaler, mp20_sample, mp20_tensors):
    index = next(i for i, s in enumerate(mp20_sample) if len(s) < 10)
    scaled = scaler.scale(mp20_tensors[index])
    assert not scaled[:, :, 12 + len(mp20_sample[index]) :][:4, : layout.N_HEADER].any()
    assert not scaled[:, :12, :12].any()


def test_symmetric_feature_range(mp20_tensors):
    scaled = FieldScaler((-1, 1)).fit(mp20_tensors[:100]).scale(mp20_tensors[:100])
    assert scaled.min() == pytest.approx(-1, abs=1e-6) and scaled.max() == pytest.approx(1, abs=1e-6)


def test_save_and_load(scaler, tmp_path, mp20_tensors):
    path = tmp_path / "scaler.json"
    scaler.save(path)
    assert json.loads(path.read_text())["format"] == "crystens.FieldScaler"
    loaded = FieldScaler.load(path)
    np.testing.assert_array_equal(loaded.scale(mp20_tensors[:5]), scaler.scale(mp20_tensors[:5]))


def test_errors_name_the_problem(scaler, mp20_tensors):
    with pytest.raises(RuntimeError, match="not fitted"):
        FieldScaler().scale(mp20_tensors[0])
    with pytest.raises(ValueError, match="does not match"):
        scaler.scale(np.zeros((4, 32, 32)))
    with pytest.raises(ValueError, match="NaN"):
        FieldScaler().fit(np.full((2, 4, 64, 64), np.nan))
    with pytest.raises(ValueError, match="increasing"):
        FieldScaler((1, 0))
    with pytest.raises(ValueError, match="format"):
        FieldScaler.from_dict({"fields": {}})
