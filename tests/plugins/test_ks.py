"""The K-S metric on real structures with known answers."""

import pytest

from crystens_core import get_metric
from crystens_core.testing import parametrize_with_checks


@parametrize_with_checks([get_metric("ks")])
def test_conformance(component, check):
    check(component)


def test_a_set_against_itself_is_zero(mp20_sample):
    values = get_metric("ks").compute(structures=mp20_sample.structures[:200], reference=mp20_sample.structures[:200])
    assert values["ks_mean"] == 0.0 and values["pvalue_a"] == 1.0


def test_two_samples_of_one_distribution_are_close_and_another_dataset_is_far(mp20_sample, shared_data):
    from crystens_core.data import load_dataset

    train, held_out = mp20_sample.structures[:300], mp20_sample.structures[300:600]
    same = get_metric("ks").compute(structures=held_out, reference=train)
    carbon = load_dataset(shared_data / "carbon_24" / "test.csv.gz").structures[:300]
    other = get_metric("ks").compute(structures=carbon, reference=train)
    assert same["ks_mean"] < 0.15
    assert other["ks_atomic_number"] > 0.9  # carbon only vs 80-odd elements
    assert other["ks_n_elements"] == pytest.approx(1.0, abs=0.05)  # carbon is always one element
    assert other["ks_mean"] > 3 * same["ks_mean"]


def test_nothing_generated_gives_nan(mp20_sample):
    values = get_metric("ks").compute(structures=[], reference=mp20_sample.structures[:10])
    assert values["n_generated"] == 0.0 and values["ks_a"] != values["ks_a"]  # NaN
