"""Tests of the electronegativity layer and of its registration with crystens."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

import crystens_core
from crystens_core import get_decoder, get_encoder
from crystens_core.layout import SITE_OFFSET, size_for
from crystens_core.testing import parametrize_with_checks
from crystens_chemistry.electronegativity import ElectronegativityLayer

# Pauling electronegativities (Pauling units), written out independently of pymatgen.
PAULING = {"O": 3.44, "Na": 0.93, "Mn": 1.55, "Co": 1.88, "Ni": 1.91}


@parametrize_with_checks([ElectronegativityLayer()])
def test_conformance(component, check):
    check(component)


@pytest.fixture(scope="session")
def oxide():
    """A real Na–O structure from the shipped sample whose elements are all in PAULING."""
    from crystens_core.data import load_dataset

    for structure in load_dataset("mp20-sample"):
        symbols = {site.specie.symbol for site in structure}
        if {"Na", "O"} <= symbols <= set(PAULING):
            return structure
    pytest.fail("mp20-sample has no Na–O structure made of the tabulated elements")


def test_values_on_real_structure(oxide):
    channel = ElectronegativityLayer().channel(oxide, 52)
    n = len(oxide)
    sites = slice(SITE_OFFSET, SITE_OFFSET + n)
    symbols = [site.specie.symbol for site in oxide]
    chi = np.array([PAULING[s] for s in symbols])

    assert channel.shape == (size_for(52), size_for(52)) and channel.dtype == np.float32
    np.testing.assert_allclose(channel[0, sites], chi, atol=1e-6)
    np.testing.assert_allclose(channel[sites, 0], chi, atol=1e-6)
    np.testing.assert_allclose(channel[sites, sites], chi[:, None] - chi[None, :], atol=1e-6)

    o, na = symbols.index("O"), symbols.index("Na")
    assert channel[0, SITE_OFFSET + o] == pytest.approx(3.44)
    assert channel[SITE_OFFSET + o, SITE_OFFSET + na] == pytest.approx(3.44 - 0.93)
    assert channel[SITE_OFFSET + na, SITE_OFFSET + o] == pytest.approx(0.93 - 3.44)


def test_element_without_pauling_value_gives_zero():
    argon = Structure(Lattice.cubic(5.3), ["Ar", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    channel = ElectronegativityLayer().channel(argon, 4)
    assert np.isfinite(channel).all()
    assert channel[0, SITE_OFFSET] == 0.0
    assert channel[SITE_OFFSET, SITE_OFFSET + 1] == pytest.approx(-0.93)


def test_registered_and_used_by_encoder(oxide):
    plugins = crystens_core.load_plugins()
    assert "crystens_chemistry" in plugins, f"installed plugins: {sorted(plugins)}"
    info = plugins["crystens_chemistry"]
    assert info.error is None, info.error
    assert "layer:electronegativity" in info.components

    tensor = get_encoder("crystens", layers=["electronegativity"]).encode(oxide)
    assert tensor.shape == (5, 64, 64)
    plain = get_encoder("crystens").encode(oxide)
    np.testing.assert_array_equal(tensor[:4], plain)
    decoder = get_decoder("auto")
    with_layer, without = decoder.decode(tensor), decoder.decode(plain)
    assert with_layer.ok, with_layer.reason
    assert with_layer.structure == without.structure


def test_cli_lists_plugin():
    script = Path(sys.executable).with_name("crystens")
    command = str(script) if script.exists() else shutil.which("crystens")
    assert command, "the `crystens` command is not installed"
    result = subprocess.run([command, "plugins", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    if isinstance(payload, dict):  # {"plugins": [...]} or {name: record}
        payload = payload["plugins"] if "plugins" in payload else [dict(r, name=n) for n, r in payload.items()]
    records = {record["name"]: record for record in payload}
    assert "crystens_chemistry" in records, f"listed: {sorted(records)}"
    assert "layer:electronegativity" in records["crystens_chemistry"]["components"]
    assert not records["crystens_chemistry"].get("error")
