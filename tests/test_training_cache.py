"""Training tensors are encoded once to a memory-mapped .npy cached by a data/encoder fingerprint."""

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="the generators need `pip install crystens[torch]`")

from crystens_core import get_encoder, get_generator  # noqa: E402
from crystens_core.pipeline import CrystalPipeline  # noqa: E402
from crystens_core.training_data import TrainingCacheWarning, cached_tensors  # noqa: E402


class CountingEncoder:
    """The crystens encoder, counting the structures it encodes."""

    def __init__(self, **settings):
        self.inner = get_encoder("crystens", **settings)
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_batch(self, structures, spacegroups=None):
        self.encoded += len(structures)
        return self.inner.encode_batch(structures, spacegroups)


def _gan():
    return get_generator("gan", preset="small", width=4, batch_size=4, device="cpu", checkpoint_every=1)


def _cache_files(run):
    return sorted(p.name for p in (run / "data").glob("*.npy"))


def test_cache_is_built_once_and_reused_on_resume(mp20_sample, tmp_path):
    data = mp20_sample.subset(range(12))
    encoder = CountingEncoder()
    CrystalPipeline(_gan(), encoder=encoder).fit(data, steps=1, checkpoint_dir=tmp_path, progress=False)
    assert encoder.encoded == 12 and len(_cache_files(tmp_path)) == 1
    resumed = CrystalPipeline(_gan(), encoder=encoder)
    resumed.fit(data, steps=2, checkpoint_dir=tmp_path, progress=False)
    assert encoder.encoded == 12  # the resumed fit read the cache, it did not encode again
    assert resumed.generator.step_ == 2 and len(_cache_files(tmp_path)) == 1
    record = json.loads((tmp_path / "data" / _cache_files(tmp_path)[0]).with_suffix(".json").read_text())
    assert record["shape"] == [12, 4, 64, 64] and record["fingerprint"] + ".npy" == _cache_files(tmp_path)[0]


def test_changed_data_or_encoder_setting_gives_a_new_cache(mp20_sample, tmp_path):
    data = mp20_sample.subset(range(6))
    first = cached_tensors(data, get_encoder("crystens"), tmp_path)
    other_rows = cached_tensors(mp20_sample.subset(range(1, 7)), get_encoder("crystens"), tmp_path)
    other_encoder = cached_tensors(data, get_encoder("crystens", max_sites=40), tmp_path)
    assert len({first.filename, other_rows.filename, other_encoder.filename}) == 3
    assert other_encoder.shape == (6, 4, 52, 52) and len(list(tmp_path.glob("*.npy"))) == 3
    moved = mp20_sample.subset(range(6))
    moved.structures[0] = moved.structures[0].copy()
    moved.structures[0].translate_sites([0], [0.01, 0, 0])
    assert cached_tensors(moved, get_encoder("crystens"), tmp_path).filename != first.filename


@pytest.mark.parametrize("damage", ["truncate", "header", "record"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(mp20_sample, tmp_path, damage):
    data = mp20_sample.subset(range(5))
    encoder = CountingEncoder()
    expected = np.array(cached_tensors(data, encoder, tmp_path))
    path = next(tmp_path.glob("*.npy"))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-1000])
    elif damage == "header":
        raw = bytearray(path.read_bytes())
        raw[:128] = raw[:128].replace(b"(5, 4, 64, 64)", b"(6, 4, 64, 64)")
        path.write_bytes(bytes(raw))
    else:
        path.with_suffix(".json").write_text("{not json")
    with pytest.warns(TrainingCacheWarning, match="unusable"):
        rebuilt = cached_tensors(data, encoder, tmp_path)
    assert encoder.encoded == 10 and np.array_equal(np.array(rebuilt), expected)
    assert cached_tensors(data, encoder, tmp_path).shape == (5, 4, 64, 64) and encoder.encoded == 10


def test_training_from_the_memory_map_matches_training_in_memory(mp20_sample, tmp_path):
    import torch

    data = mp20_sample.subset(range(16))
    mapped = CrystalPipeline(get_generator("gan", preset="small", width=4, batch_size=4, device="cpu"))
    mapped.fit(data, steps=3, checkpoint_dir=tmp_path, progress=False)
    in_memory = CrystalPipeline(get_generator("gan", preset="small", width=4, batch_size=4, device="cpu"))
    in_memory.fit(data, steps=3, in_memory=True, progress=False)
    modules = mapped.generator.modules_
    assert modules.keys() == in_memory.generator.modules_.keys()
    for name, module in modules.items():
        one, two = module.state_dict(), in_memory.generator.modules_[name].state_dict()
        assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one), name
    assert [h["step"] for h in mapped.generator.history_] == [1, 2, 3]
    assert mapped.generator.history_ == in_memory.generator.history_
