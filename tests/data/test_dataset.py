"""`load_dataset` / `CrystalDataset` on real structures: samples, CSVs with bad rows, CIF folders."""

from __future__ import annotations

import gzip
import math
import re

import numpy as np
import pytest

import helpers
from crystens_core.data import CrystalDataset, load_dataset
from crystens_core.data.sources import SAMPLES
from crystens_core.errors import DatasetError


# -- shipped samples -------------------------------------------------------------------------
def test_mp20_sample_has_1000_structures_with_ids_and_float_properties(mp20_sample):
    columns, rows = helpers.read_rows(SAMPLES / "mp20-sample.csv.gz")
    assert len(rows) == 1000
    assert len(mp20_sample) == 1000 and len(mp20_sample.structures) == 1000
    assert mp20_sample.ids == [row["material_id"] for row in rows]
    assert len(set(mp20_sample.ids)) == 1000 and all(re.fullmatch(r"(mp|mvc)-\d+", i) for i in mp20_sample.ids)
    assert mp20_sample.skipped.total == 0
    assert all(1 <= len(s) <= 20 for s in mp20_sample)

    energy = mp20_sample.properties["formation_energy_per_atom"]
    assert isinstance(energy, np.ndarray) and energy.dtype == np.float64 and energy.shape == (1000,)
    np.testing.assert_array_equal(energy, [float(row["formation_energy_per_atom"]) for row in rows])
    for column in ("band_gap", "e_above_hull", "spacegroup.number"):
        assert isinstance(mp20_sample.properties[column], np.ndarray) and mp20_sample.properties[column].dtype == np.float64
    # text columns stay text; id, cif and the unnamed index column are not properties
    assert mp20_sample.properties["pretty_formula"][:3] == [row["pretty_formula"] for row in rows[:3]]
    assert not {"cif", "material_id"} & set(mp20_sample.properties)
    assert not any(c == "" or c.startswith("Unnamed") for c in mp20_sample.properties)
    # structure i belongs to id i: the composition matches the row's formula
    for index in (0, 1, 500, 999):
        assert mp20_sample[index].composition.reduced_formula == rows[index]["pretty_formula"]


def test_mp20_sample_spacegroups_agree_with_spglib(mp20_sample):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    groups = mp20_sample.spacegroups
    assert len(groups) == 1000 and all(isinstance(g, int) and 1 <= g <= 230 for g in groups)
    np.testing.assert_array_equal(groups, mp20_sample.properties["spacegroup.number"].astype(int))
    for index in (0, 7, 123, 456, 999):
        assert SpacegroupAnalyzer(mp20_sample[index], symprec=0.1).get_space_group_number() == groups[index]


def test_mpts52_sample_has_200_structures_of_21_to_52_sites(mpts52_sample):
    assert len(mpts52_sample) == 200 and mpts52_sample.skipped.total == 0
    sites = [len(s) for s in mpts52_sample]
    assert min(sites) >= 21 and max(sites) == 52
    assert sites.count(52) > 0
    assert all(s.is_ordered for s in mpts52_sample)
    assert mpts52_sample.summary()["atoms_per_cell"]["max"] == 52


# -- a CSV with bad rows ---------------------------------------------------------------------
def test_bad_rows_are_skipped_and_counted_per_reason(bad_csv):
    dataset = load_dataset(bad_csv.path, max_sites=20)
    assert dataset.ids == bad_csv.good_ids  # good rows, in file order
    assert len(dataset) == len(bad_csv.good_rows) == 8
    assert dict(dataset.skipped.counts) == {reason: 1 for reason in helpers.BAD_IDS}
    for reason, row_id in helpers.BAD_IDS.items():
        assert list(dataset.skipped.ids[reason]) == [row_id]
    assert dataset.skipped.total == 4
    assert str(bad_csv.oversized_sites) in dataset.skipped.details["bad-too-many"]
    report = dataset.skipped.as_dict()
    assert report["skipped"] == 4 and report["by_reason"]["disordered site"] == {"count": 1, "ids": ["bad-disordered"]}
    # properties line up with the kept rows only
    np.testing.assert_allclose(dataset.properties["formation_energy_per_atom"], [float(r["formation_energy_per_atom"]) for r in bad_csv.good_rows])
    for structure, row in zip(dataset, bad_csv.good_rows):
        assert structure.composition.reduced_formula == row["pretty_formula"]


def test_oversized_structure_is_kept_without_max_sites(bad_csv):
    dataset = load_dataset(bad_csv.path)
    assert "bad-too-many" in dataset.ids
    assert len(dataset[dataset.ids.index("bad-too-many")]) == bad_csv.oversized_sites
    assert helpers.TOO_MANY not in dataset.skipped.counts and dataset.skipped.total == 3


def test_strict_raises_naming_the_first_bad_row(bad_csv):
    with pytest.raises(DatasetError, match="bad-unparsable") as info:
        load_dataset(bad_csv.path, max_sites=20, strict=True)
    assert "unparsable CIF" in str(info.value)


def test_strict_passes_on_clean_data(tmp_path):
    columns, rows = helpers.read_rows(limit=5)
    path = helpers.write_csv(tmp_path / "clean.csv.gz", columns, rows)
    dataset = load_dataset(path, strict=True, max_sites=20)
    assert dataset.ids == [r["material_id"] for r in rows] and dataset.name == "clean.csv.gz"


def test_csv_without_cif_column_names_the_columns(tmp_path):
    path = tmp_path / "no_cif.csv"
    path.write_text("material_id,structure,band_gap\nmp-1,xyz,0.5\n")
    with pytest.raises(DatasetError, match="no 'cif' column") as info:
        load_dataset(path)
    assert "material_id, structure, band_gap" in str(info.value)


def test_missing_source_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not a file, a folder or a named dataset"):
        load_dataset(tmp_path / "absent.csv")


def test_rows_without_id_column_get_row_numbers(tmp_path):
    columns, rows = helpers.read_rows(limit=3)
    path = helpers.write_csv(tmp_path / "no_ids.csv", ["cif", "band_gap"], [{"cif": r["cif"], "band_gap": r["band_gap"]} for r in rows])
    dataset = load_dataset(path)
    assert dataset.ids == ["row0", "row1", "row2"]
    assert dataset.spacegroups == [None, None, None]


def test_missing_numeric_value_becomes_nan(tmp_path):
    """An empty cell in a numeric column is NaN (and no space group), not a crash."""
    columns, rows = helpers.read_rows(limit=3)
    rows[1]["spacegroup.number"] = ""
    rows[2]["band_gap"] = ""
    dataset = load_dataset(helpers.write_csv(tmp_path / "holes.csv", columns, rows))
    assert dataset.spacegroups == [int(rows[0]["spacegroup.number"]), None, int(rows[2]["spacegroup.number"])]
    band_gap = dataset.properties["band_gap"]
    assert isinstance(band_gap, np.ndarray) and math.isnan(band_gap[2]) and band_gap[0] == float(rows[0]["band_gap"])
    assert dataset.summary()["spacegroups"]["count"] >= 1


# -- a folder of CIF files --------------------------------------------------------------------
def test_cif_folder_uses_file_stems_and_skips_garbage(tmp_path):
    columns, rows = helpers.read_rows(limit=4)
    folder = tmp_path / "cifs"
    folder.mkdir()
    names = ["b_second", "a_first", "d_fourth", "c_third"]
    for name, row in zip(names, rows):
        (folder / f"{name}.cif").write_text(row["cif"])
    (folder / "garbage.cif").write_text("this file is not a crystal\n\x00\x01")
    (folder / "notes.txt").write_text("not a cif, reported and not read")
    dataset = load_dataset(folder)
    assert dataset.name == "cifs"
    assert dataset.ids == sorted(names)
    assert dataset.skipped.counts == {"unparsable CIF": 1, "not a CIF file": 1}
    assert list(dataset.skipped.ids["unparsable CIF"]) == ["garbage"] and list(dataset.skipped.ids["not a CIF file"]) == ["notes.txt"]
    by_name = dict(zip(names, rows))
    for row_id, structure in zip(dataset.ids, dataset):
        assert structure.composition.reduced_formula == by_name[row_id]["pretty_formula"]
    with pytest.raises(DatasetError, match="garbage"):
        load_dataset(folder, strict=True)


def test_single_cif_file_and_empty_folder(tmp_path):
    _, rows = helpers.read_rows(limit=1)
    path = tmp_path / "one.cif"
    path.write_text(rows[0]["cif"])
    dataset = load_dataset(path)
    assert dataset.ids == ["one"] and len(dataset) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .cif files"):
        load_dataset(tmp_path / "empty")


# -- subset and summary ----------------------------------------------------------------------
def test_subset_keeps_rows_ids_and_properties_aligned(mp20_sample):
    picks = [999, 3, 500, 3]
    part = mp20_sample.subset(picks)
    assert isinstance(part, CrystalDataset) and len(part) == 4
    assert part.ids == [mp20_sample.ids[i] for i in picks]
    assert all(part[k] is mp20_sample[i] for k, i in enumerate(picks))
    for column, values in mp20_sample.properties.items():
        if isinstance(values, np.ndarray):
            np.testing.assert_array_equal(part.properties[column], values[picks])
        else:
            assert part.properties[column] == [values[i] for i in picks]
    assert part.spacegroups == [mp20_sample.spacegroups[i] for i in picks]
    assert part.skipped is mp20_sample.skipped and part.name == mp20_sample.name
    assert len(mp20_sample) == 1000  # the original is untouched
    empty = mp20_sample.subset([])
    assert len(empty) == 0 and empty.summary()["atoms_per_cell"] == {"min": 0, "mean": 0.0, "max": 0}


def test_summary_matches_independent_counts(mp20_sample):
    _, rows = helpers.read_rows(SAMPLES / "mp20-sample.csv.gz")
    sites, elements, groups = [], set(), {}
    for row in rows[:200]:
        structure = helpers.structure_from_cif(row["cif"])
        sites.append(len(structure))
        elements |= {el.symbol for el in structure.composition.elements}
        group = int(row["spacegroup.number"])
        groups[group] = groups.get(group, 0) + 1
    summary = mp20_sample.subset(range(200)).summary()
    assert summary["structures"] == 200 and summary["skipped"] == 0
    assert summary["atoms_per_cell"]["min"] == min(sites) and summary["atoms_per_cell"]["max"] == max(sites)
    assert summary["atoms_per_cell"]["mean"] == pytest.approx(sum(sites) / len(sites))
    assert summary["elements"]["count"] == len(elements)
    assert summary["spacegroups"]["count"] == len(groups)
    top_group, top_count = summary["spacegroups"]["most_common"][0]
    assert top_count == max(groups.values()) and groups[top_group] == top_count
    assert "formation_energy_per_atom" in summary["properties"]

    full = mp20_sample.summary()
    assert full["structures"] == 1000 and full["atoms_per_cell"]["min"] == 1 and full["atoms_per_cell"]["max"] == 20
    all_elements = {el.symbol for s in mp20_sample for el in s.composition.elements}
    assert full["elements"]["count"] == len(all_elements)


def test_summary_of_bad_csv_counts_skips(bad_csv):
    dataset = load_dataset(bad_csv.path, max_sites=20)
    summary = dataset.summary()
    structures = [helpers.structure_from_cif(r["cif"]) for r in bad_csv.good_rows]
    assert summary["skipped"] == 4 and summary["structures"] == 8
    assert summary["atoms_per_cell"]["min"] == min(len(s) for s in structures)
    assert summary["atoms_per_cell"]["max"] == max(len(s) for s in structures)
    assert summary["elements"]["count"] == len({el.symbol for s in structures for el in s.composition.elements})
    assert str(dataset.skipped).startswith("skipped 4 rows")


def test_gzip_and_plain_csv_load_the_same(tmp_path):
    columns, rows = helpers.read_rows(limit=6)
    plain = load_dataset(helpers.write_csv(tmp_path / "p.csv", columns, rows))
    zipped = load_dataset(helpers.write_csv(tmp_path / "p.csv.gz", columns, rows))
    assert gzip.open(tmp_path / "p.csv.gz").read(10)  # really gzipped
    assert plain.ids == zipped.ids and [s == t for s, t in zip(plain, zipped)] == [True] * 6
