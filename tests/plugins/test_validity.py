"""The validity metric on real and hand-built structures with known answers."""

import itertools

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystens_core import get_metric
from crystens_core.testing import parametrize_with_checks

pytest.importorskip("smact")


@parametrize_with_checks([get_metric("validity")])
def test_conformance(component, check):
    check(component)


def rock_salt():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_rock_salt_is_valid_and_made_up_na2cl_is_not_charge_balanced():
    na2cl = Structure(Lattice.cubic(6.0), ["Na", "Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0], [0.25, 0.25, 0.5]])
    metric = get_metric("validity")
    figures, details = metric.compute_details(structures=[rock_salt(), na2cl])
    np.testing.assert_array_equal(details["generated"]["struct_valid"], [1.0, 1.0])
    np.testing.assert_array_equal(details["generated"]["comp_valid"], [1.0, 0.0])
    assert figures["valid"] == 0.5 and figures["n_valid"] == 1.0
    assert metric.failures_ == {"composition: not charge balanced": 1}
    # Na(-1)₂Cl(+2) balances the charge; only the Pauling test (Cl is more electronegative) rejects it.
    no_pauling = get_metric("validity", pauling_test=False).compute(structures=[na2cl])
    assert no_pauling["comp_valid"] == 1.0


def test_atoms_closer_than_half_an_angstrom_are_invalid_periodic_images_included():
    close = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.06, 0, 0]])  # 0.3 Å
    across_boundary = Structure(Lattice.cubic(10.0), ["Na", "Cl"], [[0.01, 0.5, 0.5], [0.99, 0.5, 0.5]])  # 0.2 Å through the cell face
    own_image = Structure(Lattice.tetragonal(0.45, 10.0), ["Na"], [[0, 0, 0]])  # 0.45 Å to itself, volume 2 Å³
    tiny_cell = Structure(Lattice.cubic(0.4), ["Na"], [[0, 0, 0]])  # 0.064 Å³
    just_enough = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.1, 0, 0]])  # exactly 0.5 Å is allowed
    metric = get_metric("validity")
    _, details = metric.compute_details(structures=[close, across_boundary, own_image, tiny_cell, just_enough])
    np.testing.assert_array_equal(details["generated"]["struct_valid"], [0, 0, 0, 0, 1])
    assert metric.failures_["structure: atoms closer than 0.5 Å"] == 3
    assert metric.failures_["structure: volume below 0.1 Å³"] == 1


def test_single_elements_and_metal_alloys_are_valid_as_in_cdvae():
    silicon = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    brass = Structure(Lattice.cubic(2.95), ["Cu", "Zn"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    values = get_metric("validity").compute(structures=[silicon, brass])
    assert values["comp_valid"] == 1.0
    assert get_metric("validity", include_alloys=False).compute(structures=[brass])["comp_valid"] == 0.0


def test_none_entries_are_failures(mp20_sample):
    structures = [None, mp20_sample[0], None, mp20_sample[1]]
    figures, details = get_metric("validity").compute_details(structures=structures)
    assert figures["n_structures"] == 4.0 and figures["n_failed"] == 2.0
    assert figures["struct_valid"] == 0.5  # None counts as invalid in every fraction
    for flags in details["generated"].values():
        assert np.isnan(flags[[0, 2]]).all() and not np.isnan(flags[[1, 3]]).any()


def test_real_mp20_is_structurally_valid_and_about_91_percent_charge_balanced(mp20_sample):
    values = get_metric("validity").compute(structures=mp20_sample.structures)
    assert values["struct_valid"] == 1.0  # relaxed DFT structures
    assert 0.88 < values["comp_valid"] < 0.95  # 91.3 %: about a tenth of real MP-20 compounds fail SMACT's test


def test_carbon_24_is_valid(shared_data):
    from crystens_core.data import load_dataset

    carbon = load_dataset(shared_data / "carbon_24" / "test.csv.gz").structures[:100]
    values = get_metric("validity").compute(structures=carbon)
    assert values["valid"] == 1.0


def test_vectorised_search_agrees_with_a_plain_loop_over_smact(mp20_sample):
    """The NumPy charge-balance search gives SMACT's own answer (elements without a Pauling χ aside)."""
    import smact
    from smact.screening import pauling_test

    from crystens_validity.metric import composition_key, smact_validity

    def plain(symbols, counts):
        elements = [smact.Element(s) for s in symbols]
        if len(set(symbols)) == 1 or all(s in smact.metals for s in symbols):
            return True
        for states in itertools.product(*[e.oxidation_states_smact14 for e in elements]):
            if smact.neutral_ratios(states, stoichs=[(c,) for c in counts]) and pauling_test(states, [e.pauling_eneg for e in elements]):
                return True
        return False

    keys = {composition_key(s) for s in mp20_sample.structures[:400]}
    keys = [k for k in keys if all(smact.Element(s).pauling_eneg is not None for s in k[0])]
    assert len(keys) > 300
    assert [smact_validity(*k) for k in keys] == [plain(*k) for k in keys]


def test_bad_input_names_the_argument_and_the_reason(mp20_sample):
    metric = get_metric("validity")
    with pytest.raises(TypeError, match=r"structures\[1\] must be a pymatgen Structure"):
        metric.compute(structures=[mp20_sample[0], "NaCl"])
    with pytest.raises(TypeError, match="structures must be a list"):
        metric.compute(structures=mp20_sample[0])
    with pytest.raises(ValueError, match="oxidation_states must be one of"):
        get_metric("validity", oxidation_states="made-up")
