"""`crystens evaluate` and `crystens compare` on real MP-20 structures: CIF folders, CSVs, tensors."""

import csv
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from crystens_core import hookimpl
from crystens_core.cli import main
from crystens_core.report import load_details
from crystens_core.testing import temporary_plugin

pytest.importorskip("matplotlib", reason="the report figures need `pip install crystens[eval]`")

GENERATED_ROWS = range(300, 318)  # 18 real MP-20 structures play the generated set


def _cif(structure) -> str:
    from pymatgen.io.cif import CifWriter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(CifWriter(structure))


def _write_csv(path, ids, structures):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        writer.writerows([i, _cif(s)] for i, s in zip(ids, structures))
    return path


@pytest.fixture(scope="module")
def reference_csv(tmp_path_factory, mp20_sample):
    """40 MP-20 structures as a reference CSV (small, so each evaluation takes seconds)."""
    return _write_csv(tmp_path_factory.mktemp("reference") / "reference.csv", mp20_sample.ids[:40], mp20_sample.structures[:40])


@pytest.fixture(scope="module")
def cif_folder(tmp_path_factory, mp20_sample):
    """18 good CIFs, one broken, one empty, one with an unknown element and one with two atoms 0.05 Å apart."""
    folder = tmp_path_factory.mktemp("generated")
    for i in GENERATED_ROWS:
        (folder / f"{mp20_sample.ids[i]}.cif").write_text(_cif(mp20_sample[i]))
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 4.0\nloop_\n_atom_site_label\nthis is not a CIF\n")
    (folder / "empty.cif").write_text("")
    text = _cif(mp20_sample[1])
    symbol = mp20_sample[1][0].specie.symbol
    label_line = next(line for line in text.splitlines() if line.strip().startswith(f"{symbol}  {symbol}0 "))
    (folder / "unknown.cif").write_text(text.replace(label_line, label_line.replace(f"{symbol}  {symbol}0", "Xx  Xx0")))
    overlap = mp20_sample[2].copy()
    overlap.append(overlap[0].specie, overlap.lattice.get_fractional_coords(overlap[0].coords + np.array([0.05, 0.0, 0.0])), coords_are_cartesian=False)
    (folder / "overlap.cif").write_text(_cif(overlap))
    return folder


@pytest.fixture(scope="module")
def folder_report(tmp_path_factory, cif_folder, reference_csv):
    out = tmp_path_factory.mktemp("reports") / "folder"
    result = CliRunner().invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(cif_folder), "--metric", "ks", "--gallery", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cif_folder_with_broken_files_evaluates_the_rest(folder_report, mp20_sample):
    out, output = folder_report
    record = json.loads((out / "metrics.json").read_text())
    assert record["generated"]["items"] == len(GENERATED_ROWS) + 4
    assert record["generated"]["structures"] == len(GENERATED_ROWS) + 1  # the overlapping one is evaluated
    reasons = {issue["id"]: issue["reason"] for issue in record["skipped"]}
    assert reasons == {"broken": "unparsable CIF", "empty": "empty file", "unknown": "unknown element"}
    assert "Xx" in next(i["detail"] for i in record["skipped"] if i["id"] == "unknown")
    assert [(w["id"], w["reason"]) for w in record["warnings"]] == [("overlap", "overlapping atoms")]
    assert "0.050 Å" in record["warnings"][0]["detail"]
    for name in ("broken", "empty", "unknown", "overlap"):
        assert name in output
    # every figure of the metric, the input counts and the settings are in metrics.json
    ks = record["metrics"]["ks"]
    assert 0.0 <= ks["ks_a"] <= 1.0 and ks["n_generated"] == record["generated"]["items"]
    assert record["reference"]["structures"] == 40 and record["metric_settings"]["ks"]["config"] == {"symprec": 0.1}
    assert record["sun"] is None and record["settings"]["overlap_distance_angstrom"] == 0.5


def test_details_are_aligned_with_the_input_items(folder_report, mp20_sample):
    out, _ = folder_report
    details, ids = load_details(out / "details.npz")
    a = details["structure"]["generated"]["a"]
    assert len(ids) == len(a) == len(GENERATED_ROWS) + 4
    by_id = dict(zip(ids, a))
    assert np.isnan(by_id["broken"]) and np.isnan(by_id["empty"]) and np.isnan(by_id["unknown"])
    for i in GENERATED_ROWS:
        assert by_id[mp20_sample.ids[i]] == pytest.approx(mp20_sample[i].lattice.a, abs=1e-6)
    assert len(details["structure"]["reference"]["a"]) == 40
    sites = details["structure"]["generated"]["atomic_number_sites"]
    assert len(sites) == sum(len(mp20_sample[i]) for i in GENERATED_ROWS) + len(mp20_sample[2]) + 1


def test_report_files(folder_report):
    out, _ = folder_report
    record = json.loads((out / "metrics.json").read_text())
    assert record["figures"] == ["figures/lattice.png", "figures/spacegroup-atomic-number.png", "figures/density-elements-sites.png", "figures/gallery.png"]
    for figure in record["figures"]:
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text()
    assert "## ks" in markdown and "| broken | unparsable CIF |" in markdown and "![Lattice parameters](figures/lattice.png)" in markdown
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4 and "unknown element" in page


@pytest.fixture(scope="module")
def csv_report(tmp_path_factory, reference_csv, mp20_sample):
    folder = tmp_path_factory.mktemp("csv")
    generated = _write_csv(folder / "generated.csv", mp20_sample.ids[300:310], mp20_sample.structures[300:310])
    with open(generated, "a", newline="") as handle:
        csv.writer(handle).writerow(["bad-row", "data_x\nnot a cif"])
    out = folder / "second"
    result = CliRunner().invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(generated), "--metric", "ks", "--gallery", "0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_csv_input(csv_report, mp20_sample):
    record = json.loads((csv_report / "metrics.json").read_text())
    assert record["generated"]["kind"] == "csv" and record["generated"]["items"] == 11 and record["generated"]["structures"] == 10
    assert record["skipped"] == [{"id": "bad-row", "reason": "unparsable CIF", "detail": record["skipped"][0]["detail"]}]
    _, ids = load_details(csv_report / "details.npz")
    assert ids == mp20_sample.ids[300:310] + ["bad-row"]
    assert "figures/gallery.png" not in record["figures"]


def test_tensors_from_crystens_encode(tmp_path, reference_csv, mp20_sample):
    source = _write_csv(tmp_path / "source.csv", mp20_sample.ids[400:412], mp20_sample.structures[400:412])
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(source), "-o", str(tmp_path / "tensors.npy")])
    assert result.exit_code == 0, result.output
    tensors = np.load(tmp_path / "tensors.npy")
    tensors[5] = np.nan  # a generated tensor that cannot be decoded
    np.save(tmp_path / "tensors.npy", tensors)
    out = tmp_path / "report"
    args = ["evaluate", "--reference", str(reference_csv), "--generated", str(tmp_path / "tensors.npy"), "--metric", "ks", "--metric", "self-consistency", "--gallery", "2", "-o", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["generated"]["kind"] == "npy" and record["generated"]["settings"]["decoder"] == "auto"
    assert record["generated"]["items"] == 12 and record["generated"]["structures"] == 11
    assert record["skipped"][0]["id"] == mp20_sample.ids[405] and record["skipped"][0]["reason"] == "decode failed"
    consistency = record["metrics"]["self-consistency"]
    assert consistency["n_tensors"] == 12.0 and consistency["decoded_fraction"] == pytest.approx(11 / 12)
    assert consistency["var_lattice_lengths"] < 1e-6  # encoded real crystals are self-consistent
    details, ids = load_details(out / "details.npz")
    assert ids == mp20_sample.ids[400:412]
    a = details["structure"]["generated"]["a"]
    assert np.isnan(a[5])
    np.testing.assert_allclose(np.delete(a, 5), [s.lattice.a for i, s in enumerate(mp20_sample.structures[400:412]) if i != 5], rtol=1e-4)


def test_decoded_folder_counts_failed_decodings(tmp_path, reference_csv, mp20_sample, encoder):
    tensors = encoder.encode_batch(mp20_sample.structures[500:506], mp20_sample.spacegroups[500:506])
    tensors[2] = 0.0
    np.save(tmp_path / "t.npy", tensors)
    runner = CliRunner()
    assert runner.invoke(main, ["decode", str(tmp_path / "t.npy"), "-o", str(tmp_path / "decoded")]).exit_code == 0
    out = tmp_path / "report"
    result = runner.invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(tmp_path / "decoded"), "--metric", "ks", "--metric", "self-consistency", "--gallery", "0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["generated"]["kind"] == "decoded-folder" and record["generated"]["items"] == 6 and record["generated"]["structures"] == 5
    assert [(i["id"], i["reason"]) for i in record["skipped"]] == [("000002", "decode failed")]
    # no tensors.npy in a `crystens decode` folder: the tensor metric says what it needs, ks still runs
    assert "needs tensors" in record["metrics"]["self-consistency"]["error"]
    assert record["metrics"]["ks"]["n_generated"] == 6.0
    assert "needs tensors" in result.output


def test_errors_are_clear(tmp_path, reference_csv, cif_folder):
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(tmp_path / "nothing"), "-o", str(tmp_path / "r")])
    assert result.exit_code != 0 and "does not exist" in result.output
    result = runner.invoke(main, ["evaluate", "--reference", "no-such-set", "--generated", str(cif_folder), "-o", str(tmp_path / "r")])
    assert result.exit_code != 0 and "no-such-set" in result.output and "crystens data list" in result.output
    result = runner.invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(cif_folder), "--metric", "nope", "-o", str(tmp_path / "r")])
    assert result.exit_code != 0 and "unknown metric 'nope'" in result.output and "ks" in result.output
    result = runner.invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(cif_folder), "--option", "ks.symprek=0.1", "-o", str(tmp_path / "r")])
    assert result.exit_code != 0 and "symprek" in result.output
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    result = runner.invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "r")])
    assert result.exit_code != 0 and "bad.npy" in result.output and "not a .npy file of tensors" in result.output


def test_metric_option_and_its_deprecated_spelling(tmp_path, reference_csv, mp20_sample):
    """`evaluate --metric-option` (as on `run`) sets a metric; the old `--option` still does, with a warning."""
    generated = tmp_path / "generated"
    generated.mkdir()
    for i in GENERATED_ROWS[:3]:
        (generated / f"{mp20_sample.ids[i]}.cif").write_text(_cif(mp20_sample[i]))
    runner = CliRunner()
    for spelling, value in (("--metric-option", 0.05), ("--option", 0.2)):
        out = tmp_path / spelling.strip("-")
        result = runner.invoke(main, ["evaluate", "--reference", str(reference_csv), "--generated", str(generated), "--metric", "ks", spelling, f"ks.symprec={value}", "--gallery", "0", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert json.loads((out / "metrics.json").read_text())["metric_settings"]["ks"]["config"] == {"symprec": value}
        assert ("deprecated" in result.output) == (spelling == "--option")
    assert "use --metric-option" in result.output


# -- S.U.N. through metrics registered by a plugin -----------------------------------------------
def _matches(structure, others) -> list[int]:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    formula = structure.composition.reduced_formula
    return [i for i, other in enumerate(others) if other.composition.reduced_formula == formula and matcher.fit(structure, other)]


class MatcherNovelty:
    """is_unique (first of its StructureMatcher class) and is_novel (no match in the reference)."""

    requires = frozenset({"structures", "reference"})

    def get_config(self):
        return {}

    def compute(self, *, structures, reference, tensors=None):
        return self.compute_details(structures=structures, reference=reference)[0]

    def compute_details(self, *, structures, reference, tensors=None):
        unique = np.full(len(structures), np.nan)
        novel = np.full(len(structures), np.nan)
        for i, structure in enumerate(structures):
            if structure is None:
                continue
            earlier = [s for s in structures[:i] if s is not None]
            unique[i] = 0.0 if _matches(structure, earlier) else 1.0
            novel[i] = 0.0 if _matches(structure, reference) else 1.0
        return {"uniqueness": float(np.nanmean(unique)), "novelty": float(np.nanmean(novel))}, {"generated": {"is_unique": unique, "is_novel": novel}}


class KnownHull:
    """Energy above hull looked up from Materials Project (the mp20-sample column) by StructureMatcher."""

    requires = frozenset({"structures"})

    def __init__(self, catalogue=None):
        self.catalogue = catalogue

    def get_config(self):
        return {}

    def compute(self, *, structures, reference=None, tensors=None):
        return self.compute_details(structures=structures)[0]

    def compute_details(self, *, structures, reference=None, tensors=None):
        energies = np.full(len(structures), np.nan)
        for i, structure in enumerate(structures):
            found = _matches(structure, self.catalogue.structures) if structure is not None else []
            if found:
                energies[i] = self.catalogue.properties["e_above_hull"][found[0]]
        return {"found": float(np.isfinite(energies).mean())}, {"generated": {"e_above_hull": energies}, "reference": {"e_above_hull": self.catalogue.properties["e_above_hull"]}}

    def figures(self, details, **context):
        """Paper Fig. 8, contributed the way the ehull plugin contributes it."""
        from crystens_ehull.figures import e_above_hull_histogram

        return e_above_hull_histogram(details, **context)


@pytest.fixture
def sun_metrics(mp20_sample):
    catalogue = mp20_sample.subset(range(0, 80))

    class Plugin:
        @hookimpl
        def crystens_register_metrics(self, register):
            register("test-novelty", MatcherNovelty)
            register("test-known-hull", lambda: KnownHull(catalogue))

    with temporary_plugin(Plugin(), "test-sun-metrics"):
        yield catalogue


def test_sun_rate_from_the_details_of_two_metrics(tmp_path, mp20_sample, mpts52_sample, sun_metrics):
    # generated: rows 50..69 of the catalogue (50..59 also in the reference), row 65 twice, 3 structures not in the catalogue
    rows = list(range(50, 70)) + [65]
    structures = [mp20_sample[i] for i in rows] + mpts52_sample.structures[:3]
    ids = [mp20_sample.ids[i] + ("-again" if n == 20 else "") for n, i in enumerate(rows)] + mpts52_sample.ids[:3]
    generated = _write_csv(tmp_path / "generated.csv", ids, structures)
    reference = _write_csv(tmp_path / "reference.csv", mp20_sample.ids[:60], mp20_sample.structures[:60])
    out = tmp_path / "report"
    args = ["evaluate", "--reference", str(reference), "--generated", str(generated), "--metric", "test-novelty", "--metric", "test-known-hull", "--gallery", "2", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    sun = record["sun"]
    energies = mp20_sample.properties["e_above_hull"]
    expected = sum(1 for i in range(60, 70) if energies[i] <= 0.1)  # novel, first occurrence, stable
    assert sun["n_generated"] == 24 and sun["n_sun"] == expected and sun["sun_rate"] == pytest.approx(expected / 24)
    assert sun["n_stable"] == sum(1 for i in rows if energies[i] <= 0.1) and sun["n_novel"] == 10 + 1 + 3
    assert sun["n_unique"] == 23
    assert "S.U.N. rate" in result.output
    assert "figures/e-above-hull.png" in record["figures"] and "## S.U.N. (stable, unique, novel)" in (out / "report.md").read_text()
    # which metric supplied each S.U.N. input is recorded, and nothing was ambiguous
    assert record["sun_inputs"] == {"is_unique": "test-novelty", "is_novel": "test-novelty", "e_above_hull": "test-known-hull"}
    assert record["sun_warnings"] == []
    assert "e_above_hull from metric `test-known-hull`" in (out / "report.md").read_text()


def test_two_metrics_with_the_same_sun_input_are_not_picked_silently():
    from crystens_core.evaluation import run_metrics

    class Flags:
        requires = frozenset({"structures"})

        def compute_details(self, *, structures, reference=None, tensors=None):
            n = len(structures)
            return {"n_used": float(n)}, {"generated": {"is_unique": np.ones(n), "is_novel": np.ones(n)}}

    class Hull:
        requires = frozenset({"structures"})

        def __init__(self, energy):
            self.energy = energy

        def compute_details(self, *, structures, reference=None, tensors=None):
            return {"n_used": float(len(structures))}, {"generated": {"e_above_hull": np.full(len(structures), self.energy)}}

    metrics = {"flags": Flags(), "hull-a": Hull(0.5), "hull-b": Hull(0.0)}
    structures = [object()] * 4
    ambiguous = run_metrics(metrics, structures=structures)
    assert ambiguous.sun_inputs == {"is_unique": "flags", "is_novel": "flags", "e_above_hull": "hull-a"}
    assert len(ambiguous.sun_warnings) == 1 and "'hull-a', 'hull-b'" in ambiguous.sun_warnings[0] and "--sun-source e_above_hull=METRIC" in ambiguous.sun_warnings[0]
    assert ambiguous.sun["n_stable"] == 0
    chosen = run_metrics(metrics, structures=structures, sun_sources={"e_above_hull": "hull-b"})
    assert chosen.sun_inputs["e_above_hull"] == "hull-b" and chosen.sun_warnings == [] and chosen.sun["n_sun"] == 4
    missing = run_metrics(metrics, structures=structures, sun_sources={"e_above_hull": "flags"})
    assert missing.sun is None and "e_above_hull" not in missing.sun_inputs and "'flags' gave no e_above_hull" in missing.sun_warnings[0]


def test_sun_source_option_is_recorded(tmp_path, mp20_sample, mpts52_sample, sun_metrics):
    rows = list(range(50, 60))
    generated = _write_csv(tmp_path / "generated.csv", [mp20_sample.ids[i] for i in rows], [mp20_sample[i] for i in rows])
    reference = _write_csv(tmp_path / "reference.csv", mp20_sample.ids[:60], mp20_sample.structures[:60])
    out = tmp_path / "report"
    args = ["evaluate", "--reference", str(reference), "--generated", str(generated), "--metric", "test-novelty", "--metric", "test-known-hull", "--sun-source", "e_above_hull=test-known-hull", "--gallery", "0", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["settings"]["sun_sources"] == {"e_above_hull": "test-known-hull"} and record["sun_inputs"]["e_above_hull"] == "test-known-hull"
    bad = CliRunner().invoke(main, [*args[:-2], "--sun-source", "e_above_hull=ks", "-o", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "not one of the --metric names" in bad.output


def test_sun_threshold_and_failed_structures(mp20_sample):
    from crystens_core.evaluation import sun_figures

    energies = np.array(mp20_sample.properties["e_above_hull"][:40])
    energies[[3, 7]] = np.nan  # structures that failed
    unique = np.ones(40)
    unique[[1, 2]] = 0.0
    novel = np.ones(40)
    novel[5] = 0.0
    details = {"u": {"generated": {"is_unique": unique, "is_novel": novel}}, "e": {"generated": {"e_above_hull": energies}}}
    sun = sun_figures(details, 40, threshold=0.02)
    stable = np.nan_to_num(energies, nan=1.0) <= 0.02
    assert sun["n_stable"] == stable.sum() and 0 < stable.sum() < 38
    assert sun["n_sun"] == (stable & (unique == 1) & (novel == 1)).sum()
    assert sun["sun_rate"] == sun["n_sun"] / 40 and sun["stability_threshold"] == 0.02
    assert sun_figures({"u": details["u"]}, 40) is None  # no energies above hull: no S.U.N.


def test_bad_details_are_reported_and_figures_kept(mp20_sample):
    from crystens_core.evaluation import run_metrics

    class Misaligned:
        requires = frozenset({"structures"})

        def compute_details(self, *, structures, reference=None, tensors=None):
            sizes = [len(s) for s in structures if s is not None]
            return {"mean_sites": float(np.mean(sizes))}, {"generated": {"n_sites": np.asarray(sizes, float)}}

    structures = [mp20_sample[0], None, mp20_sample[1]]
    evaluation = run_metrics({"misaligned": Misaligned()}, structures=structures)
    assert evaluation.figures["misaligned"]["mean_sites"] == pytest.approx((len(mp20_sample[0]) + len(mp20_sample[1])) / 2)
    assert evaluation.details["misaligned"]["generated"] == {}
    assert "2 values for 3 generated structures" in evaluation.detail_errors["misaligned"]


# -- crystens compare ----------------------------------------------------------------------------
def test_compare_two_reports(tmp_path, folder_report, csv_report):
    first, _ = folder_report
    second = csv_report
    runner = CliRunner()
    out = tmp_path / "compare"
    result = runner.invoke(main, ["compare", str(first), str(second), "-o", str(out)])
    assert result.exit_code == 0, result.output
    a, b = (json.loads((folder / "metrics.json").read_text()) for folder in (first, second))
    markdown = (out / "compare.md").read_text()
    assert "| metric | figure | folder | second |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| ks | ks_mean |"))
    assert row == f"| ks | ks_mean | {a['metrics']['ks']['ks_mean']:.4g} | {b['metrics']['ks']['ks_mean']:.4g} |"
    assert "| inputs | items | 22 | 11 |" in markdown and "| inputs | skipped | 3 | 1 |" in markdown
    comparison = json.loads((out / "compare.json").read_text())
    assert [r["label"] for r in comparison["runs"]] == ["folder", "second"]
    page = (out / "compare.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(comparison["figures"]) == 1
    result = runner.invoke(main, ["compare", str(first), str(tmp_path), "-o", str(out)])
    assert result.exit_code != 0 and "no metrics.json" in result.output
