"""The hook specifications every crystens plugin implements a subset of.

Each hook receives a ``register`` callback; a plugin calls it once per component
it provides::

    from crystens_core import hookimpl

    @hookimpl
    def crystens_register_metrics(register):
        register("my-metric", MyMetric, description="What it measures")

``register(name, factory, *, description="")``: ``factory(**config)`` must return
the component. The core owns the registry, name clashes and error messages.
Later versions of crystens only ever *add* arguments to these hooks; pluggy
passes an implementation just the arguments it names, so plugins written
against this version keep working.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("crystens")
hookimpl = pluggy.HookimplMarker("crystens")


class RegisterCallback(Protocol):
    """The callback a registration hook receives."""

    def __call__(self, name: str, factory: Callable[..., Any], *, description: str = "") -> None:
        ...


@hookspec
def crystens_register_encoders(register: RegisterCallback) -> None:
    """Register encoders: structure → raw tensor of shape (C, S, S), float32.

    An encoder has ``encode(structure, spacegroup=None)``, ``encode_batch(structures,
    spacegroups=None)`` and the attributes ``max_sites``, ``size`` and ``channels``.
    """


@hookspec
def crystens_register_decoders(register: RegisterCallback) -> None:
    """Register decoders: raw tensor (C, S, S) → :class:`crystens_core.DecodeResult`.

    A decoder has ``decode(tensor)`` and ``decode_batch(tensors)``; it never raises
    on a bad tensor but returns a result whose ``structure`` is None and whose
    ``reason`` says why.
    """


@hookspec
def crystens_register_generators(register: RegisterCallback) -> None:
    """Register generators: models that learn the distribution of CrysTens tensors.

    A generator keeps :class:`crystens_core.protocols.Generator`, exactly what the
    command line, the pipeline and the conformance suite call: ``factory(preset=...,
    **settings)``, ``get_config()``, ``fit(tensors, *, steps, scaler, encoder_config,
    checkpoint_dir, resume, progress, time_limit)`` returning self, ``sample(n, *,
    seed, progress)`` returning raw tensors (n, C, S, S) float32, ``save_pretrained``
    / ``from_pretrained`` and the attributes ``step_`` and ``history_``. Subclassing
    :class:`crystens_core.generator_base.GeneratorBase` gives all of it but its
    backend hooks. See docs/plugins.md.
    """


@hookspec
def crystens_register_metrics(register: RegisterCallback) -> None:
    """Register metrics: a set of generated crystals → a dict of named floats.

    A metric has ``requires`` (a subset of ``{"tensors", "structures",
    "reference"}``), ``get_config()`` (a JSON-able dict) and ``compute(*,
    tensors=None, structures=None, reference=None)`` returning ``dict[str, float]``.
    ``structures`` holds one entry per generated item, None where decoding or
    reading failed; count those as failures.

    Every figure says how many items it was computed on, so nothing is dropped
    silently: a count ``n_used_<figure>`` (a shared tail of the name will do:
    ``n_used_a`` for ``ks_a`` and ``pvalue_a``) or, for figures all over the same
    items, ``n_used``; figures that also depend on the reference add
    ``n_reference_used_<figure>``. Names starting with ``n_`` are counts
    (see :func:`crystens_core.testing.figure_count`).

    Optionally ``compute_details(...)``, with the same arguments, returns
    ``(figures, details)``: ``figures`` what ``compute`` returns, ``details``
    ``{"generated": {name: 1-D float array}, "reference": {name: array}}`` of
    per-structure values the report draws and saves in ``details.npz``. Generated
    arrays are aligned with ``structures`` (with ``tensors`` for tensor-only
    metrics): one value per item, NaN where it failed. The names ``is_unique``,
    ``is_novel`` (1.0/0.0) and ``e_above_hull`` (eV/atom) give the S.U.N. rate;
    metrics.json records which metric supplied each (``sun_inputs``), and when two
    metrics supply one, ``sun_warnings`` says so unless ``--sun-source INPUT=METRIC``
    chose (see :func:`crystens_core.evaluation.sun_inputs`).

    Optionally ``figures(details, **context)`` returns the metric's report figures,
    a list of :class:`crystens_core.report.Figure` (key, title, caption and either a
    ``draw(figure)`` function drawing into an empty matplotlib figure or ``png``
    bytes). ``details`` is this metric's own details; ``context`` keywords, passed
    only where the signature takes them: ``name`` (the metric's name in the run),
    ``values`` (its figures), ``settings`` (the evaluation settings, e.g.
    ``stability_threshold_ev_per_atom``) and ``all_details``. The report names no
    metric: every figure beyond the structure plots and the gallery comes this way
    (see :func:`crystens_core.report.metric_figures`).
    """


@hookspec
def crystens_register_layers(register: RegisterCallback) -> None:
    """Register layers: extra tensor channels an encoder can append.

    A layer has ``name`` and ``channel(structure, max_sites)`` returning one
    (S, S) float32 channel in physical units, zero outside the site rows and
    columns (see :func:`crystens_core.layout.site_channel`).
    """


# A new component kind is one more spec here: ``crystens_register_<kind>s(register)``
# (e.g. ``crystens_register_conditioners`` gives kind "conditioner"; set the
# function's ``kind`` attribute where the plural is not the kind plus "s").
# The registry reads the kinds from these specs (crystens_core.plugins.component_kinds)
# and ``crystens_core.get_component(kind, name, **config)`` creates its components.
