"""A conformance suite every encoder, decoder, generator, metric or layer plugin can run on itself.

Like scikit-learn's ``parametrize_with_checks``::

    from crystens_core.testing import parametrize_with_checks

    @parametrize_with_checks([MyDecoder(), MyLayer()])
    def test_conformance(component, check):
        check(component)

Each check is a plain function of the component that raises ``AssertionError``
with a message saying what is wrong. The checks use real structures from the
sample crystens ships (``mp20-sample`` and ``mpts52-sample``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from crystens_core import layout
from crystens_core.errors import EncodingError
from crystens_core.results import CONSISTENCY_FIGURES, DecodeResult

Check = Callable[[Any], None]


@contextlib.contextmanager
def temporary_plugin(plugin: object, name: str) -> Iterator[Any]:
    """Register ``plugin`` (an object with hook implementations) as ``name`` for the block,
    then remove it and its components; yields its :class:`~crystens_core.plugins.PluginInfo`."""
    from crystens_core.plugins import registry

    info = registry().register_plugin(plugin, name)
    try:
        yield info
    finally:
        registry().unregister_plugin(name)


@functools.lru_cache(maxsize=1)
def sample_structures() -> tuple:
    """Ten real structures: eight from mp20-sample (1–20 sites) and two from mpts52-sample (one of 52 sites)."""
    from crystens_core.data import load_dataset

    small = load_dataset("mp20-sample")
    large = load_dataset("mpts52-sample")
    picks = [small[i] for i in (0, 1, 2, 3, 5, 8, 13, 21)]
    sizes = [len(s) for s in large]
    picks.append(large[int(np.argmax(sizes))])
    picks.append(large[int(np.argmin(sizes))])
    return tuple(picks)


def _reference_encoder(**config: Any):
    from crystens_core.plugins import get_encoder

    return get_encoder("crystens", **config)


def _assert_json_config(component: Any) -> None:
    assert hasattr(component, "get_config"), f"{type(component).__name__} has no get_config()"
    config = component.get_config()
    assert isinstance(config, dict), "get_config() must return a dict"
    json.dumps(config)  # raises TypeError if not JSON-serialisable
    clone = type(component)(**config)
    assert clone.get_config() == config, "constructing from get_config() must give the same configuration"


# -- encoders ---------------------------------------------------------------------------
def check_encoder_config(encoder: Any) -> None:
    _assert_json_config(encoder)


def check_encoder_shape(encoder: Any) -> None:
    for structure in sample_structures():
        if len(structure) > encoder.max_sites:
            continue
        tensor = encoder.encode(structure)
        assert tensor.shape == (encoder.channels, encoder.size, encoder.size), f"shape {tensor.shape}"
        assert tensor.dtype == np.float32, f"dtype {tensor.dtype}, expected float32"
        assert np.isfinite(tensor).all(), "tensor has non-finite values"


def check_encoder_layout(encoder: Any) -> None:
    for structure in sample_structures():
        if len(structure) > encoder.max_sites:
            continue
        tensor = encoder.encode(structure)
        n, off = len(structure), layout.SITE_OFFSET
        base = tensor[: layout.BASE_CHANNELS]
        assert not base[:, :off, :off].any(), "the top-left 12 × 12 block must be zero"
        assert not base[:, off + n :, :].any() and not base[:, :, off + n :].any(), "empty sites must be zero"
        header_rows = base[:, : layout.N_HEADER, off : off + n]
        header_cols = base[:, off : off + n, : layout.N_HEADER].transpose(0, 2, 1)
        np.testing.assert_array_equal(header_rows, header_cols, err_msg="header rows and columns must mirror")
        for channel in range(1, layout.BASE_CHANNELS):
            np.testing.assert_array_equal(header_rows[0], header_rows[channel], err_msg="header must repeat in every base channel")
        numbers = header_rows[0, layout.Z]
        np.testing.assert_array_equal(numbers, [site.specie.Z for site in structure], err_msg="Z row")
        pairs = base[:, off : off + n, off : off + n]
        np.testing.assert_allclose(pairs[0], pairs[0].T, atol=1e-5, err_msg="distances must be symmetric")
        np.testing.assert_allclose(pairs[1:], -pairs[1:].transpose(0, 2, 1), atol=1e-6, err_msg="differences must be antisymmetric")
        coords = header_rows[0, layout.COORDINATES].T
        np.testing.assert_allclose(pairs[1:].transpose(1, 2, 0), coords[:, None] - coords[None], atol=1e-5, err_msg="differences must be f_i − f_j")


def check_encoder_batch_matches_single(encoder: Any) -> None:
    structures = [s for s in sample_structures() if len(s) <= encoder.max_sites]
    batch = encoder.encode_batch(structures)
    for index, structure in enumerate(structures):
        np.testing.assert_array_equal(batch[index], encoder.encode(structure), err_msg=f"batch row {index} differs from encode()")


def check_encoder_rejects_bad_structures(encoder: Any) -> None:
    from pymatgen.core import Structure

    structure = sample_structures()[0]
    repeats = math.ceil((encoder.max_sites + 1) / len(structure))
    too_big = structure * (repeats, 1, 1)
    try:
        encoder.encode(too_big)
    except EncodingError as exc:
        assert "sites" in str(exc), f"the error should name the site count: {exc}"
    else:
        raise AssertionError(f"encoding {len(too_big)} sites with max_sites={encoder.max_sites} must raise EncodingError")
    disordered = Structure(structure.lattice, [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])
    try:
        encoder.encode(disordered, 1)
    except EncodingError as exc:
        assert "disorder" in str(exc), f"the error should say the structure is disordered: {exc}"
    else:
        raise AssertionError("encoding a disordered structure must raise EncodingError")


ENCODER_CHECKS: tuple[Check, ...] = (check_encoder_config, check_encoder_shape, check_encoder_layout, check_encoder_batch_matches_single, check_encoder_rejects_bad_structures)


# -- decoders ---------------------------------------------------------------------------
def _clean_tensors(decoder: Any) -> tuple[list, np.ndarray]:
    encoder = _reference_encoder(distance=getattr(decoder, "distance", "cartesian"))
    structures = list(sample_structures())
    return structures, encoder.encode_batch(structures)


def check_decoder_config(decoder: Any) -> None:
    _assert_json_config(decoder)


def check_decoder_round_trip(decoder: Any) -> None:
    """Clean tensors of real structures decode to structures StructureMatcher accepts (decoders
    that cannot do this by design, like the paper's fixed-K one, set ``exact_round_trip = False``)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    structures, tensors = _clean_tensors(decoder)
    results = decoder.decode_batch(tensors)
    assert len(results) == len(structures)
    matcher = StructureMatcher()
    for structure, result in zip(structures, results):
        assert isinstance(result, DecodeResult), f"decode must return DecodeResult, got {type(result).__name__}"
        assert result.ok, f"clean tensor of {structure.formula} failed: {result.reason}"
        if getattr(decoder, "exact_round_trip", True):
            assert matcher.fit(structure, result.structure), f"{structure.formula} decoded to {result.structure.formula}, which does not match"
        assert set(CONSISTENCY_FIGURES) <= set(result.consistency), f"missing figures: {set(CONSISTENCY_FIGURES) - set(result.consistency)}"
        for name in ("var_lattice_lengths", "var_angles", "var_spacegroup", "var_coordinates"):
            assert result.consistency[name] < 1e-6, f"{name} = {result.consistency[name]} on a clean tensor"


def check_decoder_survives_garbage(decoder: Any) -> None:
    size = layout.size_for(52)
    rng = np.random.default_rng(0)
    garbage = {
        "NaN": np.full((4, size, size), np.nan, dtype=np.float32),
        "inf": np.full((4, size, size), np.inf, dtype=np.float32),
        "zeros": np.zeros((4, size, size), dtype=np.float32),
        "wrong shape": np.zeros((3, 7), dtype=np.float32),
        "noise": rng.normal(0, 50, (4, size, size)).astype(np.float32),
        "negative lattice": -np.abs(rng.normal(0, 50, (4, size, size))).astype(np.float32),
    }
    for name, tensor in garbage.items():
        result = decoder.decode(tensor)
        assert isinstance(result, DecodeResult), f"{name}: decode must return a DecodeResult"
        if name != "noise":
            assert not result.ok and result.reason, f"{name}: expected a failure with a reason, got {result}"


def check_decoder_ignores_extra_channels(decoder: Any) -> None:
    _, tensors = _clean_tensors(decoder)
    extra = np.random.default_rng(1).normal(size=tensors[:, :1].shape).astype(np.float32)
    widened = np.concatenate([tensors, extra], axis=1)
    for plain, wide in zip(decoder.decode_batch(tensors), decoder.decode_batch(widened)):
        assert plain.ok and wide.ok
        assert plain.structure == wide.structure, "an extra (fifth) channel must not change the decoded structure"


def check_decoder_writes_readable_cif(decoder: Any) -> None:
    from crystens_core.data import parse_cif

    _, tensors = _clean_tensors(decoder)
    for result in decoder.decode_batch(tensors):
        text = result.to_cif()
        assert len(parse_cif(text)) == len(result.structure), "the CIF must parse back to the same number of sites"


DECODER_CHECKS: tuple[Check, ...] = (check_decoder_config, check_decoder_round_trip, check_decoder_survives_garbage, check_decoder_ignores_extra_channels, check_decoder_writes_readable_cif)


# -- metrics ----------------------------------------------------------------------------
METRIC_INPUTS = frozenset({"tensors", "structures", "reference"})


def _metric_inputs(metric: Any) -> dict[str, Any]:
    structures = list(sample_structures())
    inputs: dict[str, Any] = {}
    if "tensors" in metric.requires:
        inputs["tensors"] = _reference_encoder().encode_batch(structures)
    if "structures" in metric.requires:
        inputs["structures"] = structures
    if "reference" in metric.requires:
        inputs["reference"] = structures
    return inputs


def check_metric_declares_inputs(metric: Any) -> None:
    requires = set(getattr(metric, "requires", ()))
    assert requires, "a metric must declare what it needs in `requires`"
    assert requires <= METRIC_INPUTS, f"unknown inputs {requires - METRIC_INPUTS}; known: {sorted(METRIC_INPUTS)}"


def check_metric_returns_named_floats(metric: Any) -> None:
    values = metric.compute(**_metric_inputs(metric))
    assert isinstance(values, dict) and values, "compute() must return a non-empty dict"
    for name, value in values.items():
        assert isinstance(name, str), f"metric names must be str, got {name!r}"
        assert isinstance(value, float), f"{name}: value must be float, got {type(value).__name__}"
    json.dumps(values)


def check_metric_config(metric: Any) -> None:
    _assert_json_config(metric)


def check_metric_details(metric: Any) -> None:
    """The optional ``compute_details``: the figures of ``compute`` plus arrays that keep the
    contract (generated ones aligned with the structures, a None entry included)."""
    if not callable(getattr(metric, "compute_details", None)):
        return
    from crystens_core.evaluation import check_details

    inputs = _metric_inputs(metric)
    if "structures" in inputs:
        inputs["structures"] = [*inputs["structures"], None]
    figures, details = metric.compute_details(**inputs)
    assert isinstance(figures, dict) and figures, "compute_details()[0] must be the non-empty dict of figures"
    assert all(isinstance(value, float) for value in figures.values()), "figures must be floats"
    _, problems = check_details(details, len(inputs["structures"]) if "structures" in inputs else None)
    assert not problems, "; ".join(problems)


def figure_count(figures: dict[str, Any], name: str) -> str | None:
    """The name of the count figure ``name`` was computed on, or None.

    A figure's count is ``n_used_<S>`` for the longest ``_``-separated tail ``S`` of
    its name that has one (``ks_a`` → ``n_used_ks_a``, else ``n_used_a``), else the
    metric-wide ``n_used``. Names starting with ``n_`` are counts themselves.
    """
    if name.startswith("n_"):
        return name
    words = name.split("_")
    for start in range(len(words)):
        key = "n_used_" + "_".join(words[start:])
        if key in figures:
            return key
    return "n_used" if "n_used" in figures else None


def check_metric_reports_counts(metric: Any) -> None:
    """Every figure says how many items it was computed on (see :func:`figure_count`),
    a failed (None) entry included, so nothing is dropped silently."""
    inputs = _metric_inputs(metric)
    if "structures" in inputs:
        inputs["structures"] = [*inputs["structures"], None]
    figures = metric.compute(**inputs)
    uncounted = [name for name in figures if figure_count(figures, name) is None]
    assert not uncounted, f"figures without a count of the items they were computed on (add n_used_<figure> or n_used): {', '.join(uncounted)}"
    for name in {figure_count(figures, name) for name in figures}:
        value = figures[name]
        assert value >= 0 and float(value).is_integer(), f"{name}: a count must be a whole number ≥ 0, got {value!r}"


METRIC_CHECKS: tuple[Check, ...] = (check_metric_declares_inputs, check_metric_returns_named_floats, check_metric_config, check_metric_details, check_metric_reports_counts)


# -- layers -----------------------------------------------------------------------------
def check_layer_channel(layer: Any) -> None:
    assert isinstance(getattr(layer, "name", None), str) and layer.name, "a layer needs a non-empty `name`"
    for structure in sample_structures():
        channel = layer.channel(structure, 52)
        size, n, off = layout.size_for(52), len(structure), layout.SITE_OFFSET
        assert channel.shape == (size, size), f"channel shape {channel.shape}, expected {(size, size)}"
        assert channel.dtype == np.float32 and np.isfinite(channel).all(), "channel must be finite float32"
        assert not channel[off + n :].any() and not channel[:, off + n :].any(), "empty sites must be zero"
        assert not channel[:off, :off].any(), "the top-left 12 × 12 block must be zero"
        assert channel.any(), "the channel carries no information"


def check_layer_in_encoder(layer: Any) -> None:
    """The registered layer is appended by the CrysTens encoder and ignored by the decoders."""
    from crystens_core.plugins import get_decoder, list_components

    assert layer.name in list_components("layer"), f"layer {layer.name!r} is not registered through crystens_register_layers"
    encoder = _reference_encoder(layers=[layer.name])
    structures = list(sample_structures())
    tensors = encoder.encode_batch(structures)
    assert tensors.shape[1] == layout.BASE_CHANNELS + 1
    for structure, tensor in zip(structures, tensors):
        np.testing.assert_array_equal(tensor[layout.BASE_CHANNELS], layer.channel(structure, encoder.max_sites))
    plain = _reference_encoder().encode_batch(structures)
    for name in list_components("decoder"):
        decoder = get_decoder(name)
        for a, b in zip(decoder.decode_batch(plain), decoder.decode_batch(tensors)):
            assert a.structure == b.structure, f"decoder {name!r} must ignore the {layer.name!r} channel"


LAYER_CHECKS: tuple[Check, ...] = (check_layer_channel, check_layer_in_encoder)


# -- generators -------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def sample_tensors() -> np.ndarray:
    """Raw tensors of 16 real mp20-sample structures (space groups from the data)."""
    from crystens_core.data import load_dataset

    data = load_dataset("mp20-sample").subset(range(16))
    return _reference_encoder().encode_batch(data.structures, data.spacegroups)


def _fitted(generator: Any) -> Any:
    if getattr(generator, "_conformance_fitted", False):
        return generator
    result = generator.fit(sample_tensors(), steps=2, progress=False)
    assert result is generator, "fit() must return self"
    generator._conformance_fitted = True
    return generator


def check_generator_config(generator: Any) -> None:
    _assert_json_config(generator)


def check_generator_samples_raw_tensors(generator: Any) -> None:
    _fitted(generator)
    tensors = generator.sample(3, seed=1)
    assert tensors.shape == (3,) + sample_tensors().shape[1:], f"sample shape {tensors.shape}"
    assert tensors.dtype == np.float32 and np.isfinite(tensors).all(), "samples must be finite float32"
    np.testing.assert_array_equal(tensors, generator.sample(3, seed=1), err_msg="the same seed must give the same samples")
    assert not np.array_equal(tensors, generator.sample(3, seed=2)), "different seeds must give different samples"
    fields = layout.field_index_map(tensors.shape[1], tensors.shape[2])
    assert not tensors[:, fields < 0].any(), "entries that are zero in the layout must be zero"


def check_generator_save_and_load(generator: Any) -> None:
    import tempfile

    _fitted(generator)
    with tempfile.TemporaryDirectory() as folder:
        generator.save_pretrained(folder)
        loaded = type(generator).from_pretrained(folder)
        np.testing.assert_array_equal(loaded.sample(2, seed=5), generator.sample(2, seed=5), err_msg="a loaded model must sample identically")


def check_generator_rejects_bad_folders(generator: Any) -> None:
    import tempfile

    from crystens_core.pretrained import PretrainedError

    with tempfile.TemporaryDirectory() as folder:
        try:
            type(generator).from_pretrained(folder)
        except PretrainedError as exc:
            assert "missing" in str(exc), f"the error should say what is missing: {exc}"
        else:
            raise AssertionError("from_pretrained on an empty folder must raise PretrainedError")


GENERATOR_CHECKS: tuple[Check, ...] = (check_generator_config, check_generator_samples_raw_tensors, check_generator_save_and_load, check_generator_rejects_bad_folders)


# -- parametrisation --------------------------------------------------------------------
def checks_for(component: Any, kind: str | None = None) -> tuple[Check, ...]:
    """The checks that apply to ``component`` (its kind guessed from its methods if not given)."""
    kind = kind or _guess_kind(component)
    return {"encoder": ENCODER_CHECKS, "decoder": DECODER_CHECKS, "metric": METRIC_CHECKS, "layer": LAYER_CHECKS, "generator": GENERATOR_CHECKS}[kind]


def _guess_kind(component: Any) -> str:
    for kind, method in (("encoder", "encode_batch"), ("decoder", "decode"), ("metric", "compute"), ("layer", "channel"), ("generator", "sample")):
        if callable(getattr(component, method, None)):
            return kind
    raise TypeError(f"{type(component).__name__} is not an encoder, decoder, metric, layer or generator")


def parametrize_with_checks(components: Sequence[Any]):
    """A ``pytest.mark.parametrize("component, check", ...)`` over every check of every component."""
    import pytest

    params = [
        pytest.param(component, check, id=f"{type(component).__name__}-{check.__name__}")
        for component in components
        for check in checks_for(component)
    ]
    return pytest.mark.parametrize("component, check", params)
