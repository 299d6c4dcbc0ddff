"""The CrysTens encoder against the authors' own output and against pymatgen."""

import numpy as np
import pytest
from pymatgen.core import Structure

from crystens_core import get_encoder, layout
from crystens_core.errors import EncodingError, UnknownComponentError


@pytest.fixture(scope="module")
def reference(fixtures_dir):
    """The authors' own encoder output for 32 real structures (committed fixture, see tests/fixtures/README.md)."""
    return np.load(fixtures_dir / "authors_encoder_vectors.npz", allow_pickle=False)


def test_matches_the_authors_encoder(reference):
    """In the authors' fractional-distance convention, transposed to channels first."""
    encoder = get_encoder("crystens", distance="fractional")
    structures = [Structure.from_str(str(cif), fmt="cif") for cif in reference["cifs"]]
    mine = encoder.encode_batch(structures, [int(g) for g in reference["spacegroup"]])
    theirs = reference["tensors"].transpose(0, 3, 1, 2)
    assert max(len(s) for s in structures) >= 40  # the large structures are covered
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5 * max(1.0, np.abs(theirs).max()))


def test_cartesian_distance_is_the_in_cell_vector_length(mp20_sample, mp20_tensors):
    for index in (0, 7, 99):
        structure = mp20_sample[index]
        frac = structure.frac_coords % 1.0
        n = len(structure)
        block = mp20_tensors[index, 0, 12 : 12 + n, 12 : 12 + n]
        for i in range(n):
            for j in range(n):
                expected = np.linalg.norm(structure.lattice.get_cartesian_coords(frac[i] - frac[j]))
                assert block[i, j] == pytest.approx(expected, abs=2e-5)


def test_header_holds_the_structure(mp20_sample, mp20_tensors):
    structure, tensor = mp20_sample[3], mp20_tensors[3]
    copies = layout.header_copies(tensor, np.arange(len(structure)))
    np.testing.assert_allclose(copies[layout.LENGTHS, 0, 0], structure.lattice.abc, rtol=1e-6)
    np.testing.assert_allclose(copies[layout.ANGLES, 0, 0], structure.lattice.angles, rtol=1e-6)
    assert copies[layout.SPACEGROUP, 0, 0] == mp20_sample.spacegroups[3]
    assert (copies == copies[..., :1]).all()  # 8 identical copies per site and field


def test_space_group_found_with_spglib_matches_the_dataset(mp20_sample, encoder):
    subset = mp20_sample.structures[:40]
    found = encoder.encode_batch(subset)[:, 0, layout.SPACEGROUP, layout.SITE_OFFSET]
    assert list(found.astype(int)) == mp20_sample.spacegroups[:40]


def test_cell_choices_change_the_cell_not_the_space_group(mp20_sample):
    structure = next(s for s, g in zip(mp20_sample, mp20_sample.spacegroups) if g == 225)
    conventional = get_encoder("crystens", cell="conventional").encode(structure)
    primitive = get_encoder("crystens", cell="primitive").encode(structure)
    n_conv = int((layout.header_copies(conventional)[layout.Z].mean(-1) > 0).sum())
    n_prim = int((layout.header_copies(primitive)[layout.Z].mean(-1) > 0).sum())
    assert n_conv == 4 * n_prim  # face-centred: 4 primitive cells per conventional cell
    assert conventional[0, layout.SPACEGROUP, 12] == primitive[0, layout.SPACEGROUP, 12] == 225


def test_bad_options_and_inputs_are_named():
    with pytest.raises(ValueError, match="cell must be one of"):
        get_encoder("crystens", cell="supercell")
    with pytest.raises(ValueError, match="distance must be one of"):
        get_encoder("crystens", distance="manhattan")
    with pytest.raises(ValueError, match="max_sites"):
        get_encoder("crystens", max_sites=0)
    with pytest.raises(UnknownComponentError, match="unknown layer 'charge'"):
        get_encoder("crystens", layers=["charge"]).encode(Structure([[3, 0, 0], [0, 3, 0], [0, 0, 3]], ["Na"], [[0, 0, 0]]), 221)


def test_batch_error_names_the_structure(mp20_sample, encoder):
    big = mp20_sample[0] * (5, 1, 1)
    with pytest.raises(EncodingError, match=r"structure 1: 60 sites > max_sites=52"):
        encoder.encode_batch([mp20_sample[1], big], [1, 1])


def test_max_sites_sets_the_tensor_size(mpts52_sample):
    encoder = get_encoder("crystens", max_sites=60)
    tensor = encoder.encode(mpts52_sample[0])
    assert tensor.shape == (4, 72, 72)
