"""The uniqueness and novelty metrics on real structures with known answers."""

import numpy as np
import pytest

from crystens_core import get_metric
from crystens_core.testing import parametrize_with_checks


@parametrize_with_checks([get_metric("uniqueness", progress=False), get_metric("novelty", progress=False)])
def test_conformance(component, check):
    check(component)


def first_structures(path, n):
    """The first ``n`` structures of a CSV with a ``cif`` column (without parsing the rest)."""
    from crystens_core.data.dataset import parse_cif, read_csv_rows

    return [parse_cif(row["cif"]) for row in read_csv_rows(path)[1][:n]]


def perturbed_copies(structures, seed=0):
    """Copies strained by 2 %: every third one doubled into a supercell, the others with 0.05 Å random displacements."""
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    copies = []
    for index, structure in enumerate(structures):
        copy = structure.copy()
        if index % 3 == 0:
            copy.make_supercell([2, 1, 1])
        else:
            shifts = rng.normal(scale=0.05 / np.sqrt(3), size=(len(copy), 3))
            copy = Structure(copy.lattice, copy.species, copy.cart_coords + shifts, coords_are_cartesian=True)
        copy.apply_strain(0.02)
        copies.append(copy)
    return copies


def test_distinct_mp_structures_are_unique_and_not_novel_against_themselves(mp20_sample):
    structures = mp20_sample.structures[:150]
    unique = get_metric("uniqueness", progress=False).compute(structures=structures)
    novel = get_metric("novelty", progress=False).compute(structures=structures, reference=structures)
    assert unique["uniqueness"] == 1.0 and unique["n_unique"] == 150.0
    assert novel["novelty"] == 0.0 and novel["n_evaluated"] == 150.0


def test_perturbed_copies_are_duplicates_and_not_novel(mp20_sample):
    originals = mp20_sample.structures[:40]
    copies = perturbed_copies(originals)
    figures, details = get_metric("uniqueness", progress=False).compute_details(structures=originals + copies)
    np.testing.assert_array_equal(details["generated"]["is_unique"], [1.0] * 40 + [0.0] * 40)
    assert figures["uniqueness"] == 0.5
    novel = get_metric("novelty", progress=False).compute(structures=copies, reference=mp20_sample.structures)
    assert novel["novelty"] == 0.0


def test_another_dataset_is_novel(mp20_sample, carbon24_csv):
    carbon = first_structures(carbon24_csv, 60)
    values = get_metric("novelty", progress=False).compute(structures=carbon, reference=mp20_sample.structures)
    assert values["novelty"] == 1.0  # hypothetical carbon allotropes (AIRSS) vs the MP-20 sample (one C structure)


def test_same_answers_as_structure_matcher_on_every_pair(mp20_sample):
    """Grouping by composition and primitive size changes the speed, not one decision."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    originals = [mp20_sample[i] for i in (707, 976)] + mp20_sample.structures[:30]  # 707/976: two ZnS polytypes
    structures = originals + perturbed_copies(originals[::2], seed=1)
    order = np.random.default_rng(2).permutation(len(structures))
    structures = [structures[i] for i in order]
    matcher = StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10)
    plain_unique = [float(not any(matcher.fit(structures[i], structures[j]) for j in range(i))) for i in range(len(structures))]
    reference = mp20_sample.structures[:30]
    plain_novel = [float(not any(matcher.fit(s, r) for r in reference)) for s in structures]
    _, unique = get_metric("uniqueness", progress=False).compute_details(structures=structures)
    _, novel = get_metric("novelty", progress=False).compute_details(structures=structures, reference=reference)
    np.testing.assert_array_equal(unique["generated"]["is_unique"], plain_unique)
    np.testing.assert_array_equal(novel["generated"]["is_novel"], plain_novel)
    assert 0 < sum(plain_unique) < len(structures) and 0 < sum(plain_novel) < len(structures)


def test_tolerances_are_options(mp20_sample):
    """Two ZnS polytypes (mp-561118, mp-557151) match at CDVAE's tolerances, not at pymatgen's stricter defaults."""
    pair = [mp20_sample[707], mp20_sample[976]]
    assert get_metric("uniqueness", progress=False).compute(structures=pair)["n_unique"] == 1.0
    strict = get_metric("uniqueness", ltol=0.2, stol=0.3, angle_tol=5, progress=False)
    assert strict.compute(structures=pair)["n_unique"] == 2.0
    assert strict.get_config()["stol"] == 0.3


def test_none_entries_are_failures(mp20_sample):
    structures = [mp20_sample[0], None, mp20_sample[0], mp20_sample[1]]
    figures, details = get_metric("uniqueness", progress=False).compute_details(structures=structures)
    np.testing.assert_array_equal(details["generated"]["is_unique"], [1.0, np.nan, 0.0, 1.0])
    assert figures["uniqueness"] == 0.5 and figures["uniqueness_of_evaluated"] == pytest.approx(2 / 3)
    assert figures["n_failed"] == 1.0
    figures, details = get_metric("novelty", progress=False).compute_details(structures=structures, reference=[mp20_sample[1]])
    np.testing.assert_array_equal(details["generated"]["is_novel"], [1.0, np.nan, 1.0, 0.0])
    assert figures["novelty"] == 0.5 and figures["n_reference"] == 1.0


def test_bad_input_names_the_argument_and_the_reason(mp20_sample):
    with pytest.raises(TypeError, match=r"reference\[0\] must be a pymatgen Structure"):
        get_metric("novelty", progress=False).compute(structures=[mp20_sample[0]], reference=["mp-149"])
    with pytest.raises(ValueError, match="stol must be a positive number"):
        get_metric("uniqueness", stol=-1)
