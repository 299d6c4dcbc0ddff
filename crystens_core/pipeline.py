"""`CrystalPipeline`: encoder → scaler → generator → decoder → metrics, every part swappable.

Each part is a plain attribute; replacing one is an assignment::

    pipeline = CrystalPipeline(generator="gan")
    pipeline.decoder = get_decoder("paper")

The pipeline is the one place that runs: in memory (:meth:`CrystalPipeline.fit`,
``sample``, ``evaluate``) and into folders (``train_to``, ``sample_to``, ``run``:
train → sample → decode → evaluate → report), which is all ``crystens train``,
``crystens sample`` and ``crystens run`` call; :func:`write_evaluation` is the report
step, shared with ``crystens evaluate``.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystens_core.plugins import get_decoder, get_encoder, get_generator, get_metric
from crystens_core.results import DecodeResult
from crystens_core.scaler import FieldScaler
from crystens_core.training_data import cached_tensors


@dataclass
class Samples:
    """What :meth:`CrystalPipeline.sample` returns: the raw tensors and their decodings."""

    tensors: np.ndarray
    results: list[DecodeResult] = field(default_factory=list)

    @property
    def structures(self) -> list:
        """The decoded structures (failed decodings left out)."""
        return [r.structure for r in self.results if r.ok]

    @property
    def aligned_structures(self) -> list:
        """One entry per tensor: its structure, or None where decoding failed (what metrics get)."""
        return [r.structure for r in self.results]


class CrystalPipeline:
    """Train a generator on crystals, sample new ones, decode and evaluate them.

    Args:
        generator: a generator instance or a registered name.
        encoder: an encoder instance (default ``crystens``, 52 sites).
        decoder: a decoder instance (default ``auto``).
        metrics: metric instances or names (a dict name → metric, or a list of names).
        scaler: a fitted :class:`FieldScaler`; fitted on the training tensors when None.
    """

    def __init__(self, generator: Any, *, encoder: Any = None, decoder: Any = None, metrics: Any = (), scaler: FieldScaler | None = None):
        self.generator = get_generator(generator) if isinstance(generator, str) else generator
        self.encoder = encoder if encoder is not None else get_encoder("crystens")
        self.decoder = decoder if decoder is not None else get_decoder("auto")
        if isinstance(metrics, dict):
            self.metrics = dict(metrics)
        else:
            self.metrics = {m if isinstance(m, str) else type(m).__name__: get_metric(m) if isinstance(m, str) else m for m in metrics}
        self.scaler = scaler
        self.reference_: Any = []  # the training dataset after fit (its name reaches the metrics)

    def encode(self, dataset) -> np.ndarray:
        """Raw tensors of a :class:`~crystens_core.data.CrystalDataset` (its space groups when it has them)."""
        return self.encoder.encode_batch(dataset.structures, dataset.spacegroups)

    def fit(self, dataset, *, in_memory: bool = False, **fit_options: Any) -> "CrystalPipeline":
        """Encode ``dataset``, fit the scaler (if not given) and train the generator.

        The tensors are encoded once into a memory-mapped ``.npy`` and trained from there
        (:func:`~crystens_core.training_data.cached_tensors`): under
        ``<checkpoint_dir>/data/`` when a ``checkpoint_dir`` is given, so a resumed fit on
        the same data and encoder reuses it, else in a temporary folder removed after the
        fit. ``in_memory=True`` encodes into one in-memory array instead (the old path).

        ``fit_options`` go to the generator's ``fit`` (``steps``, ``checkpoint_dir``,
        ``allow_data_change``, ...); ``data_name`` (recorded with the data's fingerprint in
        checkpoints) defaults to the dataset's name when the generator's ``fit`` takes it.
        """
        if getattr(dataset, "name", "") and "data_name" in inspect.signature(self.generator.fit).parameters:
            fit_options.setdefault("data_name", dataset.name)
        if in_memory:
            self._fit_tensors(self.encode(dataset), fit_options)
        elif fit_options.get("checkpoint_dir"):
            self._fit_tensors(cached_tensors(dataset, self.encoder, Path(fit_options["checkpoint_dir"]) / "data"), fit_options)
        else:
            with tempfile.TemporaryDirectory(prefix="crystens-tensors-") as folder:
                self._fit_tensors(cached_tensors(dataset, self.encoder, folder), fit_options)
        self.reference_ = dataset
        return self

    def _fit_tensors(self, tensors: np.ndarray, fit_options: dict[str, Any]) -> None:
        """Fit the scaler (if not given) on raw tensors (an array or memory map) and train on them."""
        if self.scaler is None:
            self.scaler = FieldScaler(getattr(self.generator, "feature_range", (0.0, 1.0))).fit(tensors)
        self.generator.fit(tensors, scaler=self.scaler, encoder_config=component_config(self.encoder), **fit_options)

    def sample(self, n: int, *, seed: int = 0, progress: bool = False) -> Samples:
        """``n`` generated tensors, decoded by ``self.decoder``."""
        tensors = self.generator.sample(n, seed=seed, progress=progress)
        return Samples(tensors, self.decoder.decode_batch(tensors, progress=progress))

    def evaluate(self, samples: Samples, reference: list | None = None, details: dict | None = None) -> dict[str, dict[str, Any]]:
        """Every metric on the samples; ``reference`` defaults to the training structures.

        Metrics get one structure per tensor (None where decoding failed or the structure
        fails :func:`crystens_core.structures.structure_problem`). A metric that
        raises gives ``{"error": "..."}`` and the others still run. ``figures["sun"]``
        (the S.U.N. rate) is added when the metrics' details have ``is_unique``,
        ``is_novel`` and ``e_above_hull``.

        Args:
            samples: what :meth:`sample` returned.
            reference: reference structures (default: the training set).
            details: when given, filled with metric name → ``{"generated": {...},
                "reference": {...}}`` from the metrics that have ``compute_details``.
        """
        evaluation = self.evaluate_with_details(samples, reference)
        if details is not None:
            details.update(evaluation.details)
        figures = dict(evaluation.figures)
        if evaluation.sun is not None and "sun" not in figures:
            figures["sun"] = evaluation.sun
        return figures

    def evaluate_with_details(self, samples: Samples, reference: list | None = None):
        """Like :meth:`evaluate`, returning a :class:`crystens_core.evaluation.Evaluation`."""
        from crystens_core.evaluation import checked_reference, run_metrics
        from crystens_core.structures import structure_problem

        structures = [s if s is not None and structure_problem(s) is None else None for s in samples.aligned_structures]
        reference_structures, _ = checked_reference(reference if reference is not None else self.reference_)
        return run_metrics(self.metrics, tensors=samples.tensors, structures=structures, reference=reference_structures)

    # -- the run folder: train → sample → decode → evaluate → report ----------------------
    def train_to(
        self,
        run_dir: str | Path,
        data: Any,
        *,
        steps: int | None = None,
        time_limit: float | None = None,
        resume: bool = True,
        allow_data_change: bool = False,
        echo: Echo | None = None,
        progress: bool = False,
    ):
        """Train on ``data`` into ``run_dir``: ``checkpoints/``, ``model/`` and ``run.json``; returns the training dataset.

        Args:
            data: a dataset name, CSV or CIF folder (loaded without structures of more
                than ``encoder.max_sites`` sites) or a loaded :class:`~crystens_core.data.CrystalDataset`.
            steps: total training steps (None: the generator's default).
            time_limit: stop training after this many seconds (s), checkpointed.
            resume: continue from the newest intact checkpoint in ``run_dir/checkpoints``.
            allow_data_change: resume although the checkpoint was trained on other data.
            echo: called with each line worth printing (``echo(line)``; ``click.echo`` fits).
            progress: show progress bars.

        Raises:
            DatasetError: ``data`` holds no usable structure.
        """
        import time

        from crystens_core.data import load_dataset
        from crystens_core.errors import DatasetError
        from crystens_core.safe_io import write_json_atomic

        echo = echo or _quiet
        run_dir = Path(run_dir)
        if isinstance(data, (str, Path)):
            dataset = load_dataset(data, max_sites=self.encoder.max_sites, progress=progress)
            data_label = str(data)
        else:
            dataset, data_label = data, getattr(data, "name", "")
        if len(dataset) == 0:
            raise DatasetError(f"{data_label}: no usable structures ({dataset.skipped})")
        echo(f"{data_label}: {len(dataset)} structures ({dataset.skipped})")
        started = time.perf_counter()
        changed = {"allow_data_change": True} if allow_data_change else {}  # only then: third-party generators need not take it
        self.fit(dataset, steps=steps, checkpoint_dir=run_dir / "checkpoints", resume=resume, time_limit=time_limit, progress=progress, **changed)
        model, name = self.generator, _registered_name("generator", self.generator)
        model.save_pretrained(run_dir / "model")
        settings = model.get_config()
        record = {
            "generator": name,
            "preset": settings.get("preset"),
            "settings": settings,
            "data": data_label,
            "n_train": len(dataset),
            "skipped": dataset.skipped.as_dict(),
            "steps": model.step_,
            "seconds_this_run": time.perf_counter() - started,
            "history": model.history_,
        }
        write_json_atomic(run_dir / "run.json", record)  # strict: a NaN loss in the history becomes null
        echo(f"trained {name} to step {model.step_}; model in {run_dir / 'model'}")
        return dataset

    def sample_to(self, folder: str | Path, n: int, *, seed: int = 0, echo: Echo | None = None, progress: bool = False) -> Samples:
        """Sample ``n`` tensors into ``folder``, decoded by ``self.decoder``: ``tensors.npy``, one CIF per decoded tensor, ``summary.json``.

        Every file is written atomically; ``summary.json`` records the generator, the
        seed, the decoder's registered name and its settings.
        """
        from crystens_core.decoded_output import TENSORS_NAME, decoded_lines, numbered_ids, write_decoded
        from crystens_core.safe_io import write_npy_atomic

        folder = Path(folder)
        tensors = self.generator.sample(n, seed=seed, progress=progress)
        folder.mkdir(parents=True, exist_ok=True)
        write_npy_atomic(folder / TENSORS_NAME, tensors)
        results = self.decoder.decode_batch(tensors, progress=progress)
        header = {"generator": getattr(self.generator, "name", ""), "seed": seed, "decoder": _registered_name("decoder", self.decoder), "decoder_config": component_config(self.decoder)}
        summary = write_decoded(folder, numbered_ids(n), results, header)
        for line in decoded_lines(summary, folder):
            (echo or _quiet)(line)
        return Samples(tensors, results)

    def run(
        self,
        folder: str | Path,
        data: Any,
        *,
        samples: int = 1000,
        seed: int = 0,
        steps: int | None = None,
        time_limit: float | None = None,
        resume: bool = True,
        allow_data_change: bool = False,
        gallery: int = 12,
        sun_sources: dict[str, str] | None = None,
        echo: Echo | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Train, sample, decode, evaluate and report into ``folder``; returns the ``metrics.json`` record.

        ``folder/train`` is the run folder of :meth:`train_to`, ``folder/samples`` the
        sample folder of :meth:`sample_to` (``samples`` tensors, ``seed``), and ``folder``
        itself the report (:func:`write_evaluation`: ``metrics.json``, ``details.npz``,
        ``report.md``, ``report.html``) of ``self.metrics`` against the training set.
        """
        from crystens_core.decoded_output import numbered_ids
        from crystens_core.evaluation import GeneratedSet

        folder = Path(folder)
        dataset = self.train_to(folder / "train", data, steps=steps, time_limit=time_limit, resume=resume, allow_data_change=allow_data_change, echo=echo, progress=progress)
        drawn = self.sample_to(folder / "samples", samples, seed=seed, echo=echo, progress=progress)
        decoder = _registered_name("decoder", self.decoder)
        generated = GeneratedSet.from_results(numbered_ids(len(drawn.results)), drawn.results, tensors=drawn.tensors, source=str(folder / "samples"), settings={"decoder": decoder})
        name = _registered_name("generator", self.generator)
        header = {
            "command": "run",
            "generator": name,
            "preset": self.generator.get_config().get("preset"),
            "data": str(data) if isinstance(data, (str, Path)) else dataset.name,
            "steps": self.generator.step_,
            "samples": samples,
            "decoded": generated.n_structures,
            "decoder": decoder,
        }
        return write_evaluation(folder, generated, dataset, self.metrics, header=header, title=f"crystens run: {name}", gallery=gallery, sun_sources=sun_sources, echo=echo)


#: ``echo(line)`` or ``echo(line, err=True)`` (a line for stderr): where the pipeline's messages go (``click.echo`` fits).
Echo = Callable[..., None]


def _quiet(line: str = "", err: bool = False) -> None:
    """The default :data:`Echo`: prints nothing."""


def component_config(component: Any) -> dict[str, Any]:
    """A component's ``get_config()`` ({} when it has none)."""
    return component.get_config() if hasattr(component, "get_config") else {}


def _registered_name(kind: str, component: Any) -> str:
    """The name ``component``'s class is registered under (else its ``name`` attribute, else its class name)."""
    from crystens_core.plugins import registry

    registered = registry().component_of_class(kind, type(component))
    return registered.name if registered is not None else getattr(component, "name", "") or type(component).__name__


def write_evaluation(
    folder: str | Path,
    generated,
    reference,
    metrics: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    title: str = "crystens evaluation",
    gallery: int = 12,
    sun_sources: dict[str, str] | None = None,
    echo: Echo | None = None,
) -> dict[str, Any]:
    """Evaluate ``generated`` against ``reference`` and write the report folder; returns the ``metrics.json`` record.

    Args:
        folder: the report folder: ``metrics.json``, ``details.npz``, ``report.md``, ``report.html``.
        generated: a :class:`crystens_core.evaluation.GeneratedSet`.
        reference: the reference dataset (or list of structures).
        metrics: metric name → instance.
        header: entries placed first in ``metrics.json``.
        title: the report's heading.
        gallery: how many generated structures the report draws.
        sun_sources: S.U.N. input (``is_unique``, ``is_novel``, ``e_above_hull``) → the metric
            that supplies it, where several metrics supply one (see ``evaluate_generated``).
        echo: called with the lines worth printing (each metric's name before it runs, the
            skipped and warned items, failed metrics and the S.U.N. rate).
    """
    from crystens_core.evaluation import evaluate_generated
    from crystens_core.report import write_report

    echo = echo or _quiet
    record, details = evaluate_generated(generated, reference, metrics, header=header, on_metric=lambda name: echo(f"metric {name} ...", err=True), sun_sources=sun_sources)
    paths = write_report(folder, record, details, generated.structures, generated.ids, title=title, gallery=gallery, metrics=metrics)
    counts = generated.counts()
    echo(f"evaluated {counts['structures']} of {counts['items']} generated items against {len(reference)} reference structures")
    for issue_kind, issues in (("skipped", record["skipped"]), ("warning", record["warnings"])):
        for issue in issues[:20]:
            echo(f"  {issue_kind}: {issue['id']}: {issue['reason']} ({issue['detail']})")
        if len(issues) > 20:
            echo(f"  ... {len(issues) - 20} more {issue_kind} items in metrics.json")
    for name, values in record["metrics"].items():
        if "error" in values:
            echo(f"  metric {name}: {values['error']}", err=True)
    for warning in record.get("sun_warnings") or []:
        echo(f"  S.U.N. warning: {warning}", err=True)
    if record.get("sun"):
        echo(f"  S.U.N. rate {record['sun']['sun_rate']:.4f} ({int(record['sun']['n_sun'])} of {int(record['sun']['n_generated'])})")
    echo(f"report: {paths['html']} (metrics.json, details.npz, report.md beside it)")
    return record
