"""Metrics say what they counted, and follow CDVAE's published protocol by default (issue 9 §9)."""

from __future__ import annotations

import numpy as np
import pytest

from crystens_core import get_metric
from crystens_core.testing import METRIC_CHECKS, check_metric_reports_counts, figure_count


class SilentMean:
    """A third-party metric that averages what it can and drops the rest without saying so."""

    requires = frozenset({"structures"})

    def get_config(self):
        return {}

    def compute(self, *, structures, tensors=None, reference=None):
        volumes = [s.volume for s in structures if s is not None]
        return {"mean_volume": float(np.mean(volumes))}


class CountedMean(SilentMean):
    def compute(self, *, structures, tensors=None, reference=None):
        figures = super().compute(structures=structures)
        figures["n_used_mean_volume"] = float(sum(s is not None for s in structures))
        return figures


def test_the_conformance_suite_refuses_a_metric_that_drops_items_silently():
    assert check_metric_reports_counts in METRIC_CHECKS
    with pytest.raises(AssertionError, match="figures without a count of the items they were computed on.*mean_volume"):
        check_metric_reports_counts(SilentMean())
    check_metric_reports_counts(CountedMean())


def test_a_figure_finds_its_own_count_before_a_shared_one():
    figures = {"ks_a": 0.1, "pvalue_a": 0.5, "cov_precision": 0.4, "amsd_precision": 0.1, "n_used_a": 9.0, "n_used_precision": 8.0, "n_used_cov_precision": 10.0, "n_used": 10.0}
    assert figure_count(figures, "ks_a") == figure_count(figures, "pvalue_a") == "n_used_a"
    assert figure_count(figures, "cov_precision") == "n_used_cov_precision"
    assert figure_count(figures, "amsd_precision") == "n_used_precision"
    assert figure_count({"valid": 0.5}, "valid") is None


@pytest.mark.parametrize("name", ["validity", "ks", "uniqueness", "novelty", "self-consistency"])
def test_every_fast_built_in_metric_reports_its_counts(name):
    """(coverage, cgcnn and ehull run the same check in their own conformance tests.)"""
    check_metric_reports_counts(get_metric(name, **({"progress": False} if name in ("uniqueness", "novelty") else {})))


def test_ks_no_longer_drops_failed_structures_silently(mp20_sample):
    structures = [mp20_sample[0], None, None, mp20_sample[1]]
    figures = get_metric("ks").compute(structures=structures, reference=mp20_sample.structures[:4])
    assert figures["n_generated"] == 4.0 and figures["n_failed"] == 2.0
    for name in ("a", "gamma", "spacegroup", "density", "n_elements"):
        assert figures[f"n_used_{name}"] == 2.0 and figures[f"n_reference_used_{name}"] == 4.0


def test_validity_defaults_to_cdvae_and_matches_its_answers_where_smact_4_differs():
    """Three compositions where CDVAE's SMACT 2.2.1 and SMACT 4 disagree (one per cause): the default gives CDVAE's."""
    from pymatgen.core import Lattice, Structure

    def crystal(species):
        return Structure(Lattice.cubic(3.0 * len(species)), species, [[i / len(species), 0.5 * (i % 2), 0] for i in range(len(species))])

    structures = [crystal(["Mg"] + ["S"] * 4 + ["Pm"] * 2), crystal(["B"] * 3 + ["Ir"] * 2), crystal(["Na", "Cl", "Zr"])]
    cdvae = get_metric("validity").compute_details(structures=structures)[1]["generated"]["comp_valid"]
    crystens = get_metric("validity", protocol="crystens").compute_details(structures=structures)[1]["generated"]["comp_valid"]
    np.testing.assert_array_equal(cdvae, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(crystens, [1.0, 1.0, 0.0])


def test_the_report_shows_how_many_values_each_ks_test_used(mp20_sample):
    from crystens_core.report import metric_table

    figures = get_metric("ks").compute(structures=[mp20_sample[0], None, mp20_sample[1]], reference=mp20_sample.structures[:4])
    header, rows = metric_table(figures)
    assert header[-1] == "n used (generated / reference)"
    assert ["a", *[r for r in rows if r[0] == "a"][0][1:3], "2 / 4"] in rows
    assert not any(row[0] in ("n_used_a", "n_reference_used_a") for row in rows)  # in the column, not repeated as rows
