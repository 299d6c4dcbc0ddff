"""Hostile tensors for the decoders (issue 9 §5): every ok result is a sane crystal that
reads back as CIF, every failure says what was wrong, padding is ignored, odd dtypes and
shapes are refused, snapping is bounded and silent."""

import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystens_core import get_decoder, layout, reconstruction
from crystens_core.fuzzing import cif_round_trip_problem
from crystens_core.structures import quiet_spglib

DECODERS = ("auto", "paper")


def _set_field(tensor, field, values):
    """Write one header field into every copy (row and column, 4 channels) of the occupied sites."""
    tensor = tensor.astype(np.float64)
    n = int(np.count_nonzero(tensor[0, layout.Z, layout.SITE_OFFSET :]))
    sites = slice(layout.SITE_OFFSET, layout.SITE_OFFSET + n)
    for channel in range(layout.BASE_CHANNELS):
        tensor[channel, field, sites] = values
        tensor[channel, sites, field] = values
    return tensor


def _set_cell(tensor, lengths, angles):
    """Set a, b, c (Å) and α, β, γ (degrees) in every copy."""
    for field, value in zip(range(layout.A, layout.GAMMA + 1), [*lengths, *angles]):
        tensor = _set_field(tensor, field, value)
    return tensor


@pytest.fixture(scope="module")
def clean(mp20_tensors):
    """A clean tensor of a real 4-site crystal with a nearly cubic cell."""
    return mp20_tensors[0]


def _scaled(tensor, field, factor):
    return _set_field(tensor, field, tensor[0, field, layout.SITE_OFFSET] * factor)


HOSTILE_CELLS = {
    # name: (edit of the clean tensor, words the reason must contain)
    "needle (a × 1e-3)": (lambda t: _scaled(t, layout.A, 1e-3), "lattice length"),
    "γ ≈ 180°": (lambda t: _set_field(_set_field(_set_field(t, layout.GAMMA, 179.95), layout.ALPHA, 90.0), layout.BETA, 90.0), "angle"),
    "5e30 Å cell": (lambda t: _set_field(_set_field(_set_field(t, layout.A, 5e30), layout.B, 5e30), layout.C, 5e30), "beyond"),
    "5e5 Å cell": (lambda t: _scaled(t, layout.C, 1e5), "above 300 Å"),
    "flat cell (three angles of 119.99999°)": (lambda t: _set_field(_set_field(_set_field(t, layout.ALPHA, 119.99999), layout.BETA, 119.99999), layout.GAMMA, 119.99999), "flat"),
    # a, b, c = 11.16 Å but a + b + c is 0.13 Å long: spglib took 12–16 s per call on it
    "a 0.13 Å vector hidden by three ~120° angles": (
        lambda t: _set_cell(t, (11.1588, 11.1588, 11.1588), (119.995, 120.0, 120.0)),
        "after LLL reduction",
    ),
}


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("cell", HOSTILE_CELLS)
def test_insane_cells_fail_with_a_reason(clean, name, cell):
    edit, words = HOSTILE_CELLS[cell]
    decoder = get_decoder(name)
    plain = decoder.decode(clean)  # the unedited crystal decodes and reads back
    assert plain.ok and cif_round_trip_problem(plain.structure) is None
    result = decoder.decode(edit(clean))
    assert not result.ok, f"{cell}: reported ok as {result.structure.lattice.abc}, {result.structure.lattice.angles}"
    assert words in result.reason and not result.reason.startswith("unexpected")


def test_coincident_sites_without_merging_fail_instead_of_losing_a_site_in_the_cif(clean):
    """merge_tolerance=0 kept two atoms on one place; the CIF reader then gave no structure."""
    tensor = _set_field(clean, layout.X, clean[0, layout.X, layout.SITE_OFFSET])
    tensor = _set_field(tensor, layout.Y, clean[0, layout.Y, layout.SITE_OFFSET])
    tensor = _set_field(tensor, layout.ZC, clean[0, layout.ZC, layout.SITE_OFFSET])
    result = get_decoder("auto", merge_tolerance=0.0).decode(tensor)
    assert not result.ok and ("apart" in result.reason or "volume per atom" in result.reason)
    merged = get_decoder("auto").decode(tensor)  # the default merges them
    assert merged.ok and merged.merged_sites > 0 and cif_round_trip_problem(merged.structure) is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        (layout.A, 1e308, "field a"),  # averaging 8 copies overflowed: "unexpected OverflowError"
        (layout.Z, 1e20, "field Z"),  # "Python int too large to convert to C long"
        (layout.SPACEGROUP, 1e300, "field spacegroup"),  # int(rint(inf)): "cannot convert float infinity"
    ],
)
def test_overflowing_values_name_the_field(clean, field, value, words):
    for name in DECODERS:
        result = get_decoder(name).decode(_set_field(clean, field, value))
        assert not result.ok
        assert not result.reason.startswith("unexpected") and words in result.reason and "beyond" in result.reason


def test_nan_subnormals_and_negative_zero_in_padding_are_ignored(clean):
    tensor = clean.astype(np.float64)
    expected = get_decoder("auto").decode(clean).structure
    tensor[0, 0, 0] = np.nan  # the top-left block, never read
    tensor[2, layout.SITE_OFFSET + 30, layout.SITE_OFFSET + 31] = np.inf  # pair entry of two empty slots
    tensor[1, layout.Z, layout.SITE_OFFSET + 40] = np.nan  # one Z copy of an empty slot
    empty = tensor == 0
    tensor[empty & (np.indices(tensor.shape)[2] % 2 == 0)] = 5e-324
    tensor[empty & (np.indices(tensor.shape)[2] % 2 == 1)] = -0.0
    for name in DECODERS:
        result = get_decoder(name).decode(tensor)
        assert result.ok, result.reason
    assert get_decoder("auto").decode(tensor).structure == expected


def test_nan_in_an_entry_the_decoder_reads_is_named(clean):
    tensor = clean.astype(np.float64)
    tensor[2, layout.Y, layout.SITE_OFFSET + 1] = np.nan
    result = get_decoder("auto").decode(tensor)
    assert not result.ok and "NaN or infinite" in result.reason and "site 1, field y" in result.reason


def test_decode_batch_takes_one_tensor_as_a_batch_of_one(clean):
    results = get_decoder("auto").decode_batch(clean)
    assert len(results) == 1 and results[0].ok
    assert results[0].structure == get_decoder("auto").decode(clean).structure


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda t: t.astype(np.complex64), "complex"),  # imaginary part zero: still refused
        (lambda t: t + 1j, "complex"),
        (lambda t: t.astype(bool), "bool"),
        (lambda t: t.astype(object), "object"),
        (lambda t: t.astype(str), "<U"),
        (lambda t: np.zeros(t.shape, dtype="datetime64[s]"), "datetime64"),
        (lambda t: None, "input (a NoneType, read as dtype object)"),
        (lambda t: t[0], "bad shape (64, 64)"),
        (lambda t: t[None], "use decode_batch"),
        (lambda t: t[None, None], "bad shape (1, 1, 4, 64, 64)"),
        (lambda t: t[:3], "bad shape (3, 64, 64)"),
        (lambda t: t[:, :, :-1], "bad shape (4, 64, 63)"),
        (lambda t: t[:, :12, :12], "too small"),
        (lambda t: [[["a"]]], "<U1"),
    ],
)
def test_odd_dtypes_and_shapes_are_refused_without_warnings(clean, make, words):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complex used to be cast with a ComplexWarning
        result = get_decoder("auto").decode(make(clean))
        assert get_decoder("auto").decode(clean.astype(np.float16)).ok  # other real dtypes are numbers
        integer = get_decoder("auto").decode(np.rint(clean).astype(np.int32))  # coordinates round to 0 or 1
    assert not result.ok and words in result.reason and not result.reason.startswith("unexpected"), result.reason
    assert integer.reason is None or not integer.reason.startswith(("unexpected", "tensor dtype"))


def _spglib_troublemaker():
    """A (legal) cell with α = 179°: spglib prints "spglib: No centring was found." on it."""
    species = ["La", "Al", "Al", "Ga", "Ga"]
    coords = [[0, 0, 0], [0.25, 0.75, 0.5], [0.75, 0.25, 0.5], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5]]
    return Structure(Lattice.from_parameters(6.361, 6.361, 6.361, 179.0, 90.01, 90.01), species, coords)


def test_spglib_is_silenced(capfd, monkeypatch):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    monkeypatch.delenv("SPGLIB_WARNING", raising=False)

    def analyse():
        try:
            SpacegroupAnalyzer(_spglib_troublemaker(), symprec=0.1).get_space_group_number()
        except Exception:
            pass

    analyse()
    assert "spglib:" in capfd.readouterr().err  # the control: spglib prints from C
    with quiet_spglib():
        analyse()
    assert capfd.readouterr().err == ""


def test_snapping_is_silent_and_records_why_it_did_not_snap(capfd):
    structure, note = reconstruction.symmetrize(_spglib_troublemaker(), 139)
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    assert structure.lattice.angles[0] == pytest.approx(179.0) and "not snapped" in note


def test_snapping_stops_when_its_time_budget_is_spent():
    structure = _spglib_troublemaker()
    same, note = reconstruction.symmetrize(structure, 139, budget=0.0)
    assert same is structure and "time budget" in note


def test_snapping_refuses_absurd_site_counts():
    structure = _spglib_troublemaker() * (9, 10, 10)
    same, note = reconstruction.symmetrize(structure, 139)
    assert same is structure and f"{len(structure)} sites" in note


def test_snap_notes_reach_the_summary(mp20_sample, encoder):
    index = next(i for i, g in enumerate(mp20_sample.spacegroups) if g == 225)
    tensor = encoder.encode(mp20_sample[index], 2)  # a space group the crystal is not in
    result = get_decoder("auto", snap_to_spacegroup=True).decode(tensor)
    assert result.ok and result.notes and "space group 2" in result.notes[0]
    assert result.summary()["notes"] == result.notes
