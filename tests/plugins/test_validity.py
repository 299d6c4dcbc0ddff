"""The validity metric on real and hand-built structures with known answers."""

import csv
import gzip
import itertools
from pathlib import Path

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
    metric = get_metric("validity", protocol="crystens")
    _, details = metric.compute_details(structures=[close, across_boundary, own_image, tiny_cell, just_enough])
    np.testing.assert_array_equal(details["generated"]["struct_valid"], [0, 0, 0, 0, 1])
    assert metric.failures_["structure: atoms closer than 0.5 Å"] == 3
    assert metric.failures_["structure: volume below 0.1 Å³"] == 1
    # CDVAE's minimum-image distance matrix leaves an atom's own image out: the default protocol follows it.
    cdvae = get_metric("validity")
    _, details = cdvae.compute_details(structures=[close, across_boundary, own_image, tiny_cell, just_enough])
    np.testing.assert_array_equal(details["generated"]["struct_valid"], [0, 0, 1, 0, 1])


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


def test_carbon_24_is_valid(carbon24_csv):
    from crystens_core.data import load_dataset

    carbon = load_dataset(carbon24_csv).structures[:100]
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
    assert [smact_validity(*k, "smact14") for k in keys] == [plain(*k) for k in keys]


def test_bad_input_names_the_argument_and_the_reason(mp20_sample):
    metric = get_metric("validity")
    with pytest.raises(TypeError, match=r"structures\[1\] must be a pymatgen Structure"):
        metric.compute(structures=[mp20_sample[0], "NaCl"])
    with pytest.raises(TypeError, match="structures must be a list"):
        metric.compute(structures=mp20_sample[0])
    with pytest.raises(ValueError, match="oxidation_states must be one of"):
        get_metric("validity", oxidation_states="made-up")


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def cdvae_reference() -> list[tuple[tuple[str, ...], tuple[int, ...], bool]]:
    """Every distinct composition of the shared data with CDVAE's answer (SMACT 2.2.1; benchmarks/cdvae_smact_reference.py)."""
    with gzip.open(FIXTURES / "cdvae_smact_validity.csv.gz", "rt") as handle:
        return [(tuple(row["elements"].split()), tuple(int(c) for c in row["counts"].split()), row["cdvae_valid"] == "1") for row in csv.DictReader(handle)]


def test_every_composition_of_the_shared_data_agrees_with_cdvae():
    """All 23 978 distinct compositions of mp_20, mpts_52, perov_5 and carbon_24: CDVAE's True/False exactly."""
    from crystens_validity.metric import smact_validity

    reference = cdvae_reference()
    assert len(reference) == 23978 and sum(valid for *_, valid in reference) == 21844
    disagree = [(symbols, counts, valid) for symbols, counts, valid in reference if smact_validity(symbols, counts) != valid]
    assert disagree == []


def test_the_three_differences_from_smact_4_follow_cdvae():
    """Each cause on its own, CDVAE's answer (checked with SMACT 2.2.1) against the "crystens" protocol's."""
    from crystens_validity.metric import smact_validity

    cases = {
        # SMACT 2.2.1's Pauling test fails a same-sign pair with an element without χ (Pm): Mg S4 Pm2 only balances as S⁻² with Pm⁺³ beside Mg⁺².
        (("Mg", "S", "Pm"), (1, 4, 2)): False,
        # Ir's lowest state is −2 in SMACT 2.2.1 (−3 in SMACT 4's smact14 list): B3Ir2 needs Ir⁻³.
        (("B", "Ir"), (3, 2)): False,
        # Zr's χ is 0.33 in SMACT 2.2.1 (1.33 later): Zr⁺² below Na⁻¹ (0.93) passes the Pauling test only with 0.33.
        (("Na", "Cl", "Zr"), (1, 1, 1)): True,
    }
    for (symbols, counts), cdvae in cases.items():
        assert smact_validity(symbols, counts) is cdvae, symbols
        assert smact_validity(symbols, counts, "smact14") is not cdvae, symbols


def test_protocol_is_recorded_and_checked(mp20_sample):
    assert get_metric("validity").get_config()["protocol"] == "cdvae"
    crystens = get_metric("validity", protocol="crystens")
    assert crystens.get_config()["protocol"] == "crystens" and crystens.get_config()["oxidation_states"] == "smact14"
    with pytest.raises(ValueError, match="protocol must be one of cdvae, crystens"):
        get_metric("validity", protocol="paper")
    with pytest.raises(ValueError, match="needs protocol='crystens'"):
        get_metric("validity", oxidation_states="icsd24")
    assert get_metric("validity", protocol="crystens", oxidation_states="icsd24").compute(structures=mp20_sample.structures[:5])["n_used"] == 5.0


def test_the_cdvae_table_is_smact_2_2_1_and_carries_its_licence():
    import json

    from crystens_validity.metric import CDVAE_ELEMENT_TABLE

    elements = json.loads(CDVAE_ELEMENT_TABLE.read_text())["elements"]
    assert len(elements) == 103 and elements["Ir"]["oxidation_states"][0] == -2 and elements["Zr"]["pauling_eneg"] == 0.33
    assert elements["Pm"]["pauling_eneg"] is None and elements["Ir"]["metal"] and not elements["S"]["metal"]
    assert "MIT License" in (CDVAE_ELEMENT_TABLE.parent / "LICENSE-SMACT").read_text()
