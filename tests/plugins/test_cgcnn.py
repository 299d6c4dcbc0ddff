"""The CGCNN plugin: converted weights against the original checkpoints, accuracy on real MP data, the metric."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crystens_core import get_metric
from crystens_core.testing import parametrize_with_checks

torch = pytest.importorskip("torch")

import crystens_cgcnn  # noqa: E402
from crystens_cgcnn.model import CGCNNWeightsError  # noqa: E402
from crystens_cgcnn.properties import PROPERTIES, WEIGHTS_DIR  # noqa: E402

@pytest.fixture(scope="module")
def original_dir(shared_path) -> Path:
    """../shared/weights/cgcnn: skips without it, fails under CI=true (the recorded predictions run everywhere)."""
    return shared_path("weights/cgcnn/formation-energy-per-atom.pth.tar", "the original CGCNN checkpoints").parent


# -- the original CGCNN (txie-93/cgcnn, model.py and data.py, MIT), transcribed as the reference ----------
class _OriginalConvLayer(torch.nn.Module):
    def __init__(self, atom_fea_len, nbr_fea_len):
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.fc_full = torch.nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.sigmoid, self.softplus1, self.softplus2 = torch.nn.Sigmoid(), torch.nn.Softplus(), torch.nn.Softplus()
        self.bn1, self.bn2 = torch.nn.BatchNorm1d(2 * atom_fea_len), torch.nn.BatchNorm1d(atom_fea_len)

    def forward(self, atom_in_fea, nbr_fea, nbr_fea_idx):
        N, M = nbr_fea_idx.shape
        atom_nbr_fea = atom_in_fea[nbr_fea_idx, :]
        total_nbr_fea = torch.cat([atom_in_fea.unsqueeze(1).expand(N, M, self.atom_fea_len), atom_nbr_fea, nbr_fea], dim=2)
        total_gated_fea = self.fc_full(total_nbr_fea)
        total_gated_fea = self.bn1(total_gated_fea.view(-1, self.atom_fea_len * 2)).view(N, M, self.atom_fea_len * 2)
        nbr_filter, nbr_core = total_gated_fea.chunk(2, dim=2)
        nbr_sumed = torch.sum(self.sigmoid(nbr_filter) * self.softplus1(nbr_core), dim=1)
        return self.softplus2(atom_in_fea + self.bn2(nbr_sumed))


class _OriginalCGCNN(torch.nn.Module):
    def __init__(self, orig_atom_fea_len, nbr_fea_len, atom_fea_len, n_conv, h_fea_len, n_h):
        super().__init__()
        self.embedding = torch.nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = torch.nn.ModuleList([_OriginalConvLayer(atom_fea_len, nbr_fea_len) for _ in range(n_conv)])
        self.conv_to_fc = torch.nn.Linear(atom_fea_len, h_fea_len)
        self.conv_to_fc_softplus = torch.nn.Softplus()
        if n_h > 1:
            self.fcs = torch.nn.ModuleList([torch.nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1)])
            self.softpluses = torch.nn.ModuleList([torch.nn.Softplus() for _ in range(n_h - 1)])
        self.fc_out = torch.nn.Linear(h_fea_len, 1)

    def forward(self, atom_fea, nbr_fea, nbr_fea_idx, crystal_atom_idx):
        atom_fea = self.embedding(atom_fea)
        for conv_func in self.convs:
            atom_fea = conv_func(atom_fea, nbr_fea, nbr_fea_idx)
        crys_fea = torch.cat([torch.mean(atom_fea[idx_map], dim=0, keepdim=True) for idx_map in crystal_atom_idx], dim=0)
        crys_fea = self.conv_to_fc_softplus(self.conv_to_fc(self.conv_to_fc_softplus(crys_fea)))
        if hasattr(self, "fcs"):
            for fc, softplus in zip(self.fcs, self.softpluses):
                crys_fea = softplus(fc(crys_fea))
        return self.fc_out(crys_fea)


def _original_inputs(structures, atom_init_path, radius=8, max_num_nbr=12, dmin=0, step=0.2):
    """CIFData.__getitem__ + collate_pool of the original code."""
    import json

    atom_init = {int(k): np.array(v, dtype=float) for k, v in json.loads(Path(atom_init_path).read_text()).items()}
    gaussian_filter = np.arange(dmin, radius + step, step)
    atoms, nbr_feas, nbr_idxs, crystal_atom_idx, base = [], [], [], [], 0
    for crystal in structures:
        atom_fea = np.vstack([atom_init[crystal[i].specie.number] for i in range(len(crystal))])
        all_nbrs = [sorted(nbrs, key=lambda x: x[1]) for nbrs in crystal.get_all_neighbors(radius, include_index=True)]
        nbr_fea_idx, nbr_fea = [], []
        for nbr in all_nbrs:
            if len(nbr) < max_num_nbr:
                nbr_fea_idx.append([x[2] for x in nbr] + [0] * (max_num_nbr - len(nbr)))
                nbr_fea.append([x[1] for x in nbr] + [radius + 1.0] * (max_num_nbr - len(nbr)))
            else:
                nbr_fea_idx.append([x[2] for x in nbr[:max_num_nbr]])
                nbr_fea.append([x[1] for x in nbr[:max_num_nbr]])
        nbr_fea = np.exp(-((np.array(nbr_fea)[..., np.newaxis] - gaussian_filter) ** 2) / step**2)
        atoms.append(torch.Tensor(atom_fea))
        nbr_feas.append(torch.Tensor(nbr_fea))
        nbr_idxs.append(torch.LongTensor(np.array(nbr_fea_idx)) + base)
        crystal_atom_idx.append(torch.LongTensor(np.arange(len(crystal)) + base))
        base += len(crystal)
    return torch.cat(atoms), torch.cat(nbr_feas), torch.cat(nbr_idxs), crystal_atom_idx


def _original_predictions(checkpoint_path, inputs):
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    args, state = checkpoint["args"], checkpoint["state_dict"]
    model = _OriginalCGCNN(state["embedding.weight"].shape[1], state["convs.0.fc_full.weight"].shape[1] - 2 * args["atom_fea_len"], args["atom_fea_len"], args["n_conv"], args["h_fea_len"], args["n_h"])
    model.load_state_dict(state, strict=False)  # old checkpoints lack num_batches_tracked only
    model.eval()
    with torch.no_grad():
        output = model(*inputs)
    return (output * checkpoint["normalizer"]["std"] + checkpoint["normalizer"]["mean"]).squeeze(1).double().numpy()


def _sparse_crystal():
    """Na and Cl 7.5 Å apart in a 7.5 × 7.5 × 15 Å cell: 6 neighbours each within 8 Å, so both
    sites are padded (with site 0 of this crystal, at 9 Å)."""
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.tetragonal(7.5, 15.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0.5]])


# -- tests ---------------------------------------------------------------------------------------
@parametrize_with_checks([get_metric("cgcnn")])
def test_conformance(component, check):
    check(component)


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, crystens_cgcnn, crystens_cgcnn.plugin, crystens_cgcnn.graph; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_converted_weights_reproduce_the_original_checkpoints(original_dir, mp20_sample):
    structures = [mp20_sample[i] for i in range(0, 400, 20)] + [_sparse_crystal()]
    assert any(len(n) < 12 for n in structures[-1].get_all_neighbors(8.0)), "the padded case must be exercised"
    inputs = _original_inputs(structures, original_dir / "atom_init.json")
    ours = crystens_cgcnn.predict(structures)
    assert ours.n_failed == 0
    for name, spec in PROPERTIES.items():
        reference = _original_predictions(original_dir / f"{spec.source}.pth.tar", inputs)
        scale = max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(ours[name], reference, rtol=0, atol=2e-5 * scale, err_msg=name)
        assert np.ptp(reference) > 0.01, f"{name}: the reference should vary across real crystals"


def test_converted_weights_reproduce_the_recorded_original_predictions(mp20_sample, fixtures_dir):
    """The same check without ../shared: the original checkpoints' predictions, recorded by tests/fixtures/make_fixtures.py."""
    import json

    from crystens_cgcnn.model import read_record

    recorded = json.loads((fixtures_dir / "cgcnn_original_predictions.json").read_text())
    rows = recorded["structures"]["mp20-sample rows"]
    assert [mp20_sample.ids[i] for i in rows] == recorded["structures"]["ids"]
    structures = [mp20_sample[i] for i in rows] + [_sparse_crystal()]
    ours = crystens_cgcnn.predict(structures)
    assert ours.n_failed == 0 and set(recorded["predictions"]) == set(PROPERTIES)
    for name in PROPERTIES:
        assert read_record(name)["source"]["sha256"] == recorded["checkpoints"][name]["sha256"], f"{name}: converted from another checkpoint"
        reference = np.array(recorded["predictions"][name])
        scale = max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(ours[name], reference, rtol=0, atol=2e-5 * scale, err_msg=name)
        assert np.ptp(reference) > 0.01, f"{name}: the reference should vary across real crystals"


def test_shipped_weights_are_what_the_converter_writes(original_dir, tmp_path):
    from safetensors.torch import load_file

    from crystens_cgcnn.convert import convert
    from crystens_core.data.sources import sha256_of
    from crystens_cgcnn.model import read_record

    convert(original_dir, tmp_path)
    for name, spec in PROPERTIES.items():
        record = read_record(name)
        assert record["source"]["sha256"] == sha256_of(original_dir / f"{spec.source}.pth.tar")
        fresh, shipped = load_file(tmp_path / f"{name}.safetensors"), load_file(WEIGHTS_DIR / f"{name}.safetensors")
        assert fresh.keys() == shipped.keys() and all(torch.equal(fresh[k], shipped[k]) for k in fresh), name
        assert read_record(name, tmp_path) == record
    assert not list(tmp_path.glob("*semi*")), "the classifier is not converted"
    assert hashlib.sha256((tmp_path / "atom_init.json").read_bytes()).digest() == hashlib.sha256((WEIGHTS_DIR / "atom_init.json").read_bytes()).digest()


def test_formation_energy_is_accurate_on_real_mp20_structures(mp20_sample):
    data = mp20_sample.subset(range(100))
    predicted = crystens_cgcnn.predict(data.structures, ["formation_energy", "band_gap"], batch_size=32)
    truth = data.properties["formation_energy_per_atom"]
    assert list(predicted) == ["formation_energy", "band_gap"] and predicted.n_failed == 0
    mae = float(np.mean(np.abs(predicted["formation_energy"] - truth)))
    assert mae < 0.12, f"formation energy MAE {mae:.3f} eV/atom"
    assert np.corrcoef(predicted["formation_energy"], truth)[0, 1] > 0.95
    assert float(np.mean(np.abs(predicted["band_gap"] - data.properties["band_gap"]))) < 1.0  # eV


def test_batch_size_does_not_change_predictions(mp20_sample):
    structures = mp20_sample.structures[:30]
    one = crystens_cgcnn.predict(structures, ["bulk_modulus"], batch_size=1)["bulk_modulus"]
    many = crystens_cgcnn.predict(structures, ["bulk_modulus"], batch_size=7)["bulk_modulus"]
    np.testing.assert_allclose(one, many, rtol=0, atol=1e-5)


def test_failures_are_counted_with_a_reason_not_fatal(mp20_sample):
    from pymatgen.core import Lattice, Structure

    good = mp20_sample[0]
    isolated = Structure(Lattice.cubic(20.0), ["Fe"], [[0, 0, 0]])  # no neighbour within 8 Å
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])
    squeezed = Structure(Lattice.cubic(0.01), ["Fe"], [[0, 0, 0]])  # would list ~10¹⁰ pairs
    mendelevium = Structure(Lattice.cubic(3.0), ["Md"], [[0, 0, 0]])  # Z = 101: no element features
    structures = [good, None, isolated, disordered, squeezed, good, mendelevium]
    predicted = crystens_cgcnn.predict(structures, ["formation_energy"])
    values = predicted["formation_energy"]
    assert np.isfinite(values[[0, 5]]).all() and values[0] == values[5]
    assert np.isnan(values[1:5]).all() and np.isnan(values[6])
    assert predicted.n_failed == 5 and predicted.reasons[0] is None and "Md" in predicted.reasons[6]
    assert predicted.failures == {"no structure": 1, "site with no neighbour within 8 Å": 1, "disordered structure": 1, "cell too dense": 1, "element without CGCNN features": 1}
    figures, details = get_metric("cgcnn", properties=["formation_energy"]).compute_details(structures=structures, reference=[good, good])
    assert figures["n_failed"] == 5.0 and figures["n_generated"] == 7.0 and figures["n_reference_failed"] == 0.0
    np.testing.assert_array_equal(details["generated"]["formation_energy"], values)
    assert figures["mean_formation_energy"] == pytest.approx(values[0])


def test_a_set_against_itself_is_zero_and_carbon_is_far(mp20_sample, carbon24_csv):
    from crystens_core.data.dataset import parse_row, read_source

    metric = get_metric("cgcnn", properties=["formation_energy", "band_gap", "bulk_modulus"])
    reference = mp20_sample.structures[:150]
    same = metric.compute(structures=reference, reference=reference)
    assert all(same[f"ks_{name}"] == 0.0 for name in ("formation_energy", "band_gap", "bulk_modulus"))
    assert same["pvalue_formation_energy"] == 1.0 and same["mean_band_gap"] == same["reference_mean_band_gap"]
    _, _, rows = read_source(carbon24_csv)
    carbon = [parse_row(row["cif"])[0] for row in rows[:100]]
    assert all(s is not None for s in carbon)
    figures, details = metric.compute_details(structures=carbon, reference=reference)
    assert figures["ks_formation_energy"] > 0.7, figures  # carbon polymorphs sit near 0 eV/atom, MP-20 around -1.2
    assert figures["mean_formation_energy"] > figures["reference_mean_formation_energy"] + 0.5
    assert details["generated"]["band_gap"].shape == (100,) and details["reference"]["band_gap"].shape == (150,)


def test_missing_weights_and_unknown_properties_give_clear_errors(tmp_path, mp20_sample):
    import shutil

    with pytest.raises(CGCNNWeightsError, match=r"formation_energy\.json is missing.*crystens_cgcnn\.convert"):
        crystens_cgcnn.predict(mp20_sample.structures[:2], ["formation_energy"], weights_dir=tmp_path)
    shutil.copy(WEIGHTS_DIR / "formation_energy.json", tmp_path)
    with pytest.raises(CGCNNWeightsError, match=r"formation_energy\.safetensors is missing"):
        crystens_cgcnn.predict(mp20_sample.structures[:2], ["formation_energy"], weights_dir=tmp_path)
    (tmp_path / "formation_energy.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CGCNNWeightsError, match="unreadable"):
        crystens_cgcnn.predict(mp20_sample.structures[:2], ["formation_energy"], weights_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown CGCNN properties.*formation_energy"):
        crystens_cgcnn.predict(mp20_sample.structures[:2], ["formation-energy"])
    with pytest.raises(ValueError, match="unknown CGCNN properties"):
        get_metric("cgcnn", properties=["gap"]).compute(structures=mp20_sample.structures[:2], reference=mp20_sample.structures[:2])
