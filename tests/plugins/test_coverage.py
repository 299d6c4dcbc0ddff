"""The coverage metric on real structures with known answers (small sets: CrystalNN fingerprints are slow)."""

import json

import numpy as np
import pytest

from crystens_core import get_metric
from crystens_core.testing import parametrize_with_checks

pytest.importorskip("matminer")


@parametrize_with_checks([get_metric("coverage", symmetry_reduce=True, progress=False)])
def test_conformance(component, check):
    check(component)


@pytest.fixture(scope="module")
def small_mp20(mp20_sample):
    """Twelve MP-20 structures of at most 6 sites."""
    return [s for s in mp20_sample.structures if len(s) <= 6][:12]


def test_a_set_covers_itself_and_a_none_entry_lowers_precision(small_mp20):
    metric = get_metric("coverage", protocol="crystens", progress=False)
    figures, details = metric.compute_details(structures=small_mp20 + [None], reference=small_mp20)
    assert figures["cov_recall"] == 1.0
    assert figures["cov_precision"] == pytest.approx(12 / 13)  # the None entry counts, as in CDVAE
    assert figures["amsd_recall"] == figures["amcd_precision"] == 0.0
    assert figures["wdist_density"] == figures["wdist_num_elems"] == 0.0
    assert figures["n_failed"] == 1.0 and metric.failures_ == {"generated: no structure (failed decode)": 1}
    assert figures["n_used_cov_precision"] == 13.0 and figures["n_used_precision"] == 12.0 and figures["n_used_recall"] == 12.0
    assert figures["n_used_wdist_density"] == figures["n_reference_used_wdist_density"] == 12.0
    generated = details["generated"]
    assert all(len(v) == 13 and np.isnan(v[12]) and not np.isnan(v[:12]).any() for v in generated.values())
    np.testing.assert_array_equal(details["reference"]["covered"], np.ones(12))


def test_a_perturbed_copy_is_close_but_not_identical(small_mp20):
    from pymatgen.core import Structure

    rng = np.random.default_rng(0)
    copies = [Structure(s.lattice, s.species, s.cart_coords + rng.normal(scale=0.03, size=(len(s), 3)), coords_are_cartesian=True) for s in small_mp20]
    figures, details = get_metric("coverage", progress=False).compute_details(structures=copies, reference=small_mp20)
    assert figures["cov_recall"] == figures["cov_precision"] == 1.0
    assert 0 < figures["amsd_precision"] < 0.2  # the CrystalNN fingerprint moves a little
    assert figures["amcd_precision"] == 0.0  # same compositions
    assert np.all(details["generated"]["struc_precision_dist"] <= 0.4)


def test_another_dataset_is_not_covered(small_mp20, carbon24_csv):
    from crystens_core.data.dataset import parse_cif, read_csv_rows

    carbon = [parse_cif(row["cif"]) for row in read_csv_rows(carbon24_csv)[1][:6]]
    figures, details = get_metric("coverage", symmetry_reduce=True, progress=False).compute_details(structures=carbon, reference=small_mp20)
    assert figures["cov_recall"] == figures["cov_precision"] == 0.0  # no pure-carbon structure in the reference
    assert np.all(details["generated"]["comp_precision_dist"] > 10.0)
    # Wasserstein-1 distance between a point mass at 1 element and the reference's numbers of elements.
    elements = np.array([len(s.composition.elements) for s in small_mp20])
    assert figures["wdist_num_elems"] == pytest.approx(np.mean(elements - 1))
    np.testing.assert_array_equal(details["generated"]["n_elements"], np.ones(6))


def test_symmetry_reduction_gives_the_same_fingerprints(small_mp20):
    from crystens_coverage.fingerprints import compute_structure_fingerprint

    for structure in small_mp20[:4]:
        full = compute_structure_fingerprint(structure)
        reduced = compute_structure_fingerprint(structure, symmetry_reduce=True)
        assert full.shape == (61,)
        np.testing.assert_allclose(reduced, full, atol=1e-3)


def test_fingerprints_are_cached_per_process(small_mp20):
    from crystens_coverage import fingerprints

    fingerprints.structure_fingerprints(small_mp20[:2], progress=False)
    key = (fingerprints.content_key(small_mp20[0]), False)
    assert key in fingerprints._structure_cache
    again, _ = fingerprints.structure_fingerprints(small_mp20[:2], progress=False)
    assert again[0] is fingerprints._structure_cache[key]


def test_worker_processes_give_the_same_fingerprints(small_mp20):
    from crystens_coverage import fingerprints

    fingerprints.clear_cache()
    parallel, reasons = fingerprints.structure_fingerprints(small_mp20[:2], n_jobs=2, progress=False)
    assert reasons == ["", ""]
    for structure, value in zip(small_mp20[:2], parallel):
        np.testing.assert_array_equal(value, fingerprints.compute_structure_fingerprint(structure))


def test_the_shipped_scaler_matches_the_featuriser():
    from crystens_coverage.fingerprints import composition_labels
    from crystens_coverage.metric import SCALER_FILE, shipped_scaler

    data = json.loads(SCALER_FILE.read_text())
    assert data["labels"] == composition_labels() and data["n_compositions"] == 3000
    means, stds = shipped_scaler()
    assert means.shape == stds.shape == (132,) and np.isfinite(means).all() and (stds > 0).all()


def test_cutoffs_and_scaler_are_options(small_mp20):
    strict = get_metric("coverage", struc_cutoff=0.0, comp_cutoff=0.0, comp_scaler="reference", progress=False)
    assert strict.get_config()["struc_cutoff"] == 0.0
    figures = strict.compute(structures=small_mp20[:6], reference=small_mp20)
    assert figures["cov_precision"] == 1.0 and figures["cov_recall"] == 0.5  # exact matches only
    with pytest.raises(ValueError, match="comp_scaler"):
        get_metric("coverage", comp_scaler="made-up")
    with pytest.raises(ValueError, match="132 values"):
        get_metric("coverage", comp_scaler={"means": [0.0], "stds": [1.0]})


def test_bad_input_names_the_argument(small_mp20):
    metric = get_metric("coverage", progress=False)
    with pytest.raises(TypeError, match=r"structures\[0\] must be a pymatgen Structure"):
        metric.compute(structures=[1.0], reference=small_mp20)
    with pytest.raises(ValueError, match="reference must hold at least one structure"):
        metric.compute(structures=small_mp20, reference=[None])


def test_the_default_is_cdvae_s_protocol_with_its_published_scaler():
    from crystens_coverage.fingerprints import composition_labels
    from crystens_coverage.metric import CDVAE_SCALER_FILE, shipped_scaler

    config = get_metric("coverage", progress=False).get_config()
    assert config["protocol"] == "cdvae" and config["comp_scaler"] == "cdvae"
    assert get_metric("coverage", protocol="crystens", progress=False).get_config()["comp_scaler"] == "mp20"
    means, stds = shipped_scaler("cdvae")
    assert means.shape == stds.shape == (132,) and means[0] == 21.194441759304013 and stds[-1] == 85.980205895116
    assert json.loads(CDVAE_SCALER_FILE.read_text())["labels"] == composition_labels()
    assert "MIT License" in (CDVAE_SCALER_FILE.parent / "LICENSE-CDVAE").read_text()
    with pytest.raises(ValueError, match="protocol must be one of cdvae, crystens"):
        get_metric("coverage", protocol="diffcsp")
    with pytest.raises(ValueError, match="dataset must be one of mp20, carbon24, perov5"):
        get_metric("coverage", dataset="mp-21")


def test_cutoffs_follow_the_reference_dataset_and_are_recorded(small_mp20, shared_data):
    from crystens_core.data import load_dataset

    carbon = load_dataset(shared_data / "carbon_24" / "test.csv.gz").structures[:3]
    perov = load_dataset(shared_data / "perov_5" / "test.csv.gz")
    perov.structures, perov.ids = perov.structures[:3], perov.ids[:3]
    used = {}
    for label, reference in (("mp20", small_mp20[:3]), ("carbon", carbon), ("perov", perov), ("perov-list", list(perov.structures))):
        metric = get_metric("coverage", progress=False)
        metric.compute(structures=small_mp20[:2], reference=reference)
        config = metric.get_config()
        used[label] = (config["dataset"], config["struc_cutoff"], config["comp_cutoff"])
    assert used == {"mp20": ("mp20", 0.4, 10.0), "carbon": ("carbon24", 0.2, 4.0), "perov": ("perov5", 0.2, 4.0), "perov-list": ("perov5", 0.2, 4.0)}
    # explicit options win; protocol "crystens" keeps 0.4 / 10 everywhere
    explicit = get_metric("coverage", dataset="mp20", comp_cutoff=7.0, progress=False)
    explicit.compute(structures=small_mp20[:2], reference=carbon)
    assert (explicit.get_config()["dataset"], explicit.get_config()["struc_cutoff"], explicit.get_config()["comp_cutoff"]) == ("mp20", 0.4, 7.0)
    crystens = get_metric("coverage", protocol="crystens", progress=False)
    crystens.compute(structures=small_mp20[:2], reference=carbon)
    assert (crystens.get_config()["struc_cutoff"], crystens.get_config()["comp_cutoff"]) == (0.4, 10.0)


def test_wasserstein_distances_are_over_valid_structures_as_in_cdvae(small_mp20):
    from pymatgen.core import Lattice, Structure

    from crystens_validity.metric import ValidityMetric

    struct_valid, comp_valid, _ = ValidityMetric().flags(small_mp20)
    n_valid = int(np.sum(struct_valid * comp_valid))
    squashed = Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])  # 0.15 Å apart: not valid, fingerprints fine
    generated = small_mp20 + [squashed]
    cdvae = get_metric("coverage", progress=False).compute(structures=generated, reference=small_mp20)
    crystens = get_metric("coverage", protocol="crystens", progress=False).compute(structures=generated, reference=small_mp20)
    assert cdvae["n_used_wdist_density"] == cdvae["n_used_wdist_num_elems"] == n_valid < 13
    assert crystens["n_used_wdist_density"] == 13.0
    assert cdvae["wdist_density"] != crystens["wdist_density"]


def test_evaluate_passes_the_reference_dataset_name_to_coverage(small_mp20, mp20_sample):
    """`crystens evaluate --reference perov-5:test` must pick Perov-5's cut-offs from the set's name."""
    from crystens_core.data import CrystalDataset
    from crystens_core.evaluation import GeneratedSet, evaluate_generated

    reference = CrystalDataset(structures=list(mp20_sample.structures[:3]), ids=list(mp20_sample.ids[:3]), name="perov-5:test")
    generated = GeneratedSet(source="test", kind="cif-folder", ids=["a", "b"], structures=list(small_mp20[:2]))
    record, _ = evaluate_generated(generated, reference, {"coverage": get_metric("coverage", progress=False)})
    config = record["metric_settings"]["coverage"]["config"]
    assert (config["dataset"], config["struc_cutoff"], config["comp_cutoff"]) == ("perov5", 0.2, 4.0)
