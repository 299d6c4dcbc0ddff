"""The K-S metric on real structures with known answers."""

import numpy as np
import pytest

from crystens_core import get_metric
from crystens_core.testing import parametrize_with_checks
from crystens_ks.metric import PROPERTIES


@parametrize_with_checks([get_metric("ks")])
def test_conformance(component, check):
    check(component)


def test_a_set_against_itself_is_zero(mp20_sample):
    values = get_metric("ks").compute(structures=mp20_sample.structures[:200], reference=mp20_sample.structures[:200])
    assert values["ks_mean"] == 0.0 and values["pvalue_a"] == 1.0
    for name in PROPERTIES:
        assert values[f"ks_{name}"] == 0.0, name


def test_a_strained_copy_moves_lengths_and_density_not_angles(mp20_sample):
    """5 % isotropic strain: a, b, c and density shift; angles, space groups and chemistry do not."""
    originals = mp20_sample.structures[:300]
    strained = []
    for structure in originals:
        copy = structure.copy()
        copy.apply_strain(0.05)
        strained.append(copy)
    values = get_metric("ks").compute(structures=strained, reference=originals)
    for name in ("a", "b", "c", "density"):
        assert values[f"ks_{name}"] > 0.08, name
    for name in ("alpha", "beta", "gamma"):
        assert values[f"ks_{name}"] < 0.02, name  # only floating-point noise in the angles
    for name in ("spacegroup", "atomic_number", "n_elements"):
        assert values[f"ks_{name}"] == 0.0, name


def test_details_are_aligned_with_the_structures(mp20_sample):
    structures = [mp20_sample[0], None, mp20_sample[1]]
    values, details = get_metric("ks").compute_details(structures=structures, reference=mp20_sample.structures[:5])
    generated, reference = details["generated"], details["reference"]
    assert set(generated) == set(PROPERTIES) - {"atomic_number"} == set(reference)  # pooled per site: not in the details
    for name in generated:
        assert generated[name].shape == (3,) and np.isnan(generated[name][1]) and not np.isnan(generated[name][[0, 2]]).any(), name
        assert reference[name].shape == (5,), name
    assert generated["a"][2] == pytest.approx(mp20_sample[1].lattice.a)
    assert generated["spacegroup"][0] == mp20_sample.spacegroups[0]  # MP-20's space groups agree with spglib at 0.1 Å
    assert generated["density"][2] == pytest.approx(mp20_sample[1].density)
    assert values["n_generated"] == 3.0


def test_two_samples_of_one_distribution_are_close_and_another_dataset_is_far(mp20_sample, carbon24_csv):
    from crystens_core.data.dataset import parse_cif, read_csv_rows

    train, held_out = mp20_sample.structures[:300], mp20_sample.structures[300:600]
    same = get_metric("ks").compute(structures=held_out, reference=train)
    carbon = [parse_cif(row["cif"]) for row in read_csv_rows(carbon24_csv)[1][:300]]
    other = get_metric("ks").compute(structures=carbon, reference=train)
    assert same["ks_mean"] < 0.15
    assert other["ks_atomic_number"] > 0.9  # carbon only vs 80-odd elements
    assert other["ks_n_elements"] == pytest.approx(1.0, abs=0.05)  # carbon is always one element
    assert other["ks_mean"] > 3 * same["ks_mean"]


def test_nothing_generated_gives_nan(mp20_sample):
    values = get_metric("ks").compute(structures=[], reference=mp20_sample.structures[:10])
    assert values["n_generated"] == 0.0 and values["ks_a"] != values["ks_a"]  # NaN
    values = get_metric("ks").compute(structures=[None, None], reference=mp20_sample.structures[:10])
    assert values["n_generated"] == 2.0 and np.isnan(values["ks_mean"])


def test_bad_input_names_the_argument(mp20_sample):
    with pytest.raises(TypeError, match=r"structures\[0\] must be a pymatgen Structure"):
        get_metric("ks").compute(structures=["NaCl"], reference=mp20_sample.structures[:3])


def test_every_statistic_says_how_many_values_it_was_computed_on(mp20_sample, monkeypatch):
    """A None entry and a structure spglib cannot analyse are left out of a test, and the counts say so."""
    from crystens_ks import metric as ks_module

    structures = [mp20_sample[0], None, mp20_sample[1], mp20_sample[2]]
    unanalysable = mp20_sample[2]
    real_spacegroup = ks_module.spacegroup_number
    monkeypatch.setattr(ks_module, "spacegroup_number", lambda s, symprec=0.1: float("nan") if s is unanalysable else real_spacegroup(s, symprec))
    values = get_metric("ks").compute(structures=structures, reference=mp20_sample.structures[:5])
    assert values["n_generated"] == 4.0 and values["n_failed"] == 1.0
    assert values["n_used_a"] == values["n_used_density"] == 3.0 and values["n_reference_used_a"] == 5.0
    assert values["n_used_spacegroup"] == 2.0  # spglib "failed" on one structure: not silently dropped any more
    assert values["n_used_atomic_number"] == sum(len(mp20_sample[i]) for i in (0, 1, 2))  # sites
    assert values["n_used_ks_mean"] == float(len(PROPERTIES))
