"""The ``crystens`` command line."""

from __future__ import annotations

import errno
import json
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import click

from crystens_core.errors import CrystensError

DEBUG_ENV = "CRYSTENS_DEBUG"
#: Exit status of an unexpected error (sysexits' EX_SOFTWARE); 1 is a known failure, 2 a usage error.
INTERNAL_ERROR_EXIT = 70


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


class UserError(click.ClickException):
    """A known failure: one line ``error: <message>`` on stderr, exit status 1."""

    prefix = "error"

    def show(self, file: Any = None) -> None:
        click.echo(f"{self.prefix}: {_one_line(self.format_message())}", err=True)


class UsageLine(UserError):
    """A bad option or argument, as one line; exit status 2 like click's usage errors."""

    exit_code = 2

    @classmethod
    def of(cls, exc: click.UsageError) -> UsageLine:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return cls(f"{exc.format_message()}{hint}")


#: Usage errors that are click showing a help page (a bare `crystens data`), left to click.
_HELP_SHOWN = tuple(filter(None, [getattr(click.exceptions, "NoArgsIsHelpError", None)]))


class InternalError(UserError):
    """An unexpected exception: one line naming its type, exit status :data:`INTERNAL_ERROR_EXIT`."""

    prefix = "internal error"
    exit_code = INTERNAL_ERROR_EXIT


def _fail(exc: Exception) -> click.ClickException:
    return UserError(str(exc))


def _describe_os_error(exc: OSError) -> str:
    """"PATH: reason" for a file-system error (missing file, permission, disk full, ...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return reason
    paths = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
    return f"{paths}: {reason}"


class CrystensGroup(click.Group):
    """The ``crystens`` group: the one place where an error becomes one line on stderr.

    :class:`CrystensError` and file-system errors print ``error: <message>`` and
    exit 1; any other exception (a plugin calling ``sys.exit`` included) prints
    ``internal error: <Type>: <message>`` and exits 70. ``--debug`` (or
    ``CRYSTENS_DEBUG=1``) prints the traceback first. Ctrl-C goes through.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except _HELP_SHOWN:
            raise
        except click.UsageError as exc:
            raise UsageLine.of(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt, *_HELP_SHOWN):
            raise
        except click.UsageError as exc:  # a bad option or argument: one line too, exit 2
            raise UsageLine.of(exc) from exc
        except click.ClickException as exc:
            self._traceback(ctx)
            if type(exc) is click.ClickException:  # plain ClickException: same one-line form
                raise UserError(exc.format_message()) from exc
            raise
        except CrystensError as exc:
            self._traceback(ctx)
            raise UserError(str(exc)) from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # stdout closed (`crystens ... | head`): click handles it
                raise
            self._traceback(ctx)
            raise UserError(_describe_os_error(exc)) from exc
        except (Exception, SystemExit, GeneratorExit) as exc:
            self._traceback(ctx)
            detail = _one_line(str(exc)) if not isinstance(exc, SystemExit) else f"something called sys.exit({exc.code!r})"
            detail = detail or "(no message)"
            raise InternalError(f"{type(exc).__name__}: {detail} (run with --debug for the traceback)") from exc

    @staticmethod
    def _traceback(ctx: click.Context) -> None:
        if ctx.params.get("debug"):
            traceback.print_exc(file=sys.stderr)


def _parse_config(pairs: tuple[str, ...], option: str = "--option") -> dict[str, Any]:
    """``("max_sites=52", "layers=[\\"a\\"]")`` → keyword arguments (values parsed as JSON when they can be); ``option`` names the flag in errors."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
        except RecursionError:
            raise click.BadParameter(f"{key}: value nested too deeply", param_hint=option) from None
    return config


@click.group(cls=CrystensGroup)
@click.version_option(package_name="crystens")
@click.option("--debug", is_flag=True, envvar=DEBUG_ENV, help=f"Print the traceback of an error (also ${DEBUG_ENV}=1).")
def main(debug: bool) -> None:
    """crystens: train, compare and extend crystal generators on the CrysTens representation.

    Exit status: 0 done; 1 a known failure, printed as one line `error: ...` that
    names the input and the reason; 2 a usage error; 70 an unexpected (internal)
    error, printed as one line `internal error: ...`. --debug adds the traceback.
    Warnings (a damaged checkpoint skipped, data changed on resume, ...) print as one
    line `warning: ...` (with --debug, in Python's form with file and line).
    """
    _enable_faulthandler()
    if not debug:
        warnings.showwarning = _show_warning


def _show_warning(message: Warning | str, category: type, filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
    """One line ``warning: <message>`` on stderr (what the user needs; --debug keeps Python's form)."""
    click.echo(f"warning: {_one_line(str(message))}", err=True)


def _enable_faulthandler() -> None:
    """Make a crash inside a C extension (e.g. a segfault) print where it happened on stderr."""
    import faulthandler

    if not faulthandler.is_enabled():
        try:
            faulthandler.enable(file=sys.__stderr__)
        except (AttributeError, OSError, ValueError):  # no real stderr (embedded, or closed)
            pass


# -- plugins ----------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List every plugin (built-in or installed), its version, components, load error and what was refused."""
    from crystens_core.plugins import load_plugins

    records = [info.as_dict() for info in load_plugins().values()]
    if as_json:
        click.echo(json.dumps({"plugins": records}, indent=2))
        return
    for record in records:
        origin = "built-in" if record["builtin"] else (record["distribution"] or "in-process")
        click.echo(f"{record['name']} {record['version'] or ''} [{origin}] {record['state']}")
        for component in record["components"]:
            description = _one_line(record["descriptions"].get(component, ""))
            click.echo(f"    {component}  {description}" if description else f"    {component}")
        for reason in record["refused"]:
            click.echo(f"    refused: {reason}")
        if record["error"]:
            click.echo(f"    error: {record['error']}")


# -- data -------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """Datasets: the shipped samples and the benchmark sets."""


@data.command("list")
def data_list() -> None:
    """Named datasets and where they would come from."""
    from crystens_core.data.sources import DATASETS, DATA_DIR_ENV, data_dir, local_splits

    root = data_dir()
    for spec in DATASETS.values():
        if spec.shipped:
            where = "shipped"
        else:
            local = local_splits(spec)
            where = f"local: {', '.join(local)}" if local else f"download ({', '.join(spec.splits)})"
        click.echo(f"{spec.name:14s} {spec.description}  [{where}]")
    if root is None:
        click.echo(f"(set ${DATA_DIR_ENV} to a folder with mp_20/, mpts_52/, ... to use local copies)")


@data.command("info")
@click.argument("name")
@click.option("--max-sites", type=int, default=None, help="Skip structures with more sites.")
@click.option("--strict", is_flag=True, help="Fail on the first bad row instead of skipping it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def data_info(name: str, max_sites: int | None, strict: bool, as_json: bool) -> None:
    """Counts, atoms per cell, elements and space groups of a dataset (name, CSV or CIF folder)."""
    from crystens_core.data import load_dataset

    try:
        dataset = load_dataset(name, max_sites=max_sites, strict=strict, progress=True)
    except CrystensError as exc:
        raise _fail(exc) from exc
    summary = dataset.summary()
    summary["skip_report"] = dataset.skipped.as_dict()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    atoms = summary["atoms_per_cell"]
    click.echo(f"{summary['name']}: {summary['structures']} structures ({dataset.skipped})")
    click.echo(f"atoms per cell: {atoms['min']}–{atoms['max']}, mean {atoms['mean']:.2f}")
    click.echo(f"elements: {summary['elements']['count']}; most common: " + ", ".join(f"{e} {n}" for e, n in summary["elements"]["most_common"]))
    groups = summary["spacegroups"]
    if groups["count"]:
        click.echo(f"space groups: {groups['count']}; most common: " + ", ".join(f"{g} ({n})" for g, n in groups["most_common"]))
    click.echo("properties: " + (", ".join(summary["properties"]) or "none"))


# -- encode / decode --------------------------------------------------------------------
@main.command()
@click.argument("source")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output .npy (a .json with ids and the skip report goes beside it).")
@click.option("--encoder", default="crystens", show_default=True, help="Encoder name.")
@click.option("--max-sites", type=int, default=52, show_default=True, help="Most sites per structure (tensor side = 12 + max sites).")
@click.option("--cell", type=click.Choice(["as-is", "conventional", "primitive"]), default="as-is", show_default=True)
@click.option("--distance", type=click.Choice(["cartesian", "fractional"]), default="cartesian", show_default=True, help="Channel-0 distance: Å or the authors' fractional norm.")
@click.option("--symprec", type=float, default=0.1, show_default=True, help="spglib tolerance (Å).")
@click.option("--layer", "layers", multiple=True, help="Extra layer to append as a channel (repeatable).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--strict", is_flag=True, help="Fail on the first bad row instead of skipping it.")
def encode(source: str, output: str, encoder: str, max_sites: int, cell: str, distance: str, symprec: float, layers: tuple[str, ...], workers: int, strict: bool) -> None:
    """Encode SOURCE (named dataset, CSV with a cif column, or CIF folder) into raw CrysTens tensors."""
    from crystens_core.encoding import encode_to_npy

    config = {"max_sites": max_sites, "cell": cell, "distance": distance, "symprec": symprec, "layers": list(layers)}
    try:
        summary = encode_to_npy(source, output, encoder=encoder, encoder_config=config, workers=workers, strict=strict)
    except (CrystensError, ValueError) as exc:
        raise _fail(exc) from exc
    click.echo(f"wrote {summary.count} tensors of shape {summary.shape[1:]} to {summary.output}; {summary.skipped}")
    for reason, count in summary.skipped.counts.most_common():
        ids = summary.skipped.ids[reason]
        click.echo(f"  {reason}: {count} (e.g. {', '.join(ids[:5])})")
    click.echo(f"ids and skip report: {summary.metadata}")


@main.command()
@click.argument("tensors", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder for the CIFs and summary.json.")
@click.option("--decoder", default="auto", show_default=True, help="Decoder name (see `crystens plugins`).")
@click.option("--option", "options", multiple=True, help="Decoder setting KEY=VALUE (repeatable), e.g. snap_to_spacegroup=true.")
def decode(tensors: str, output: str, decoder: str, options: tuple[str, ...]) -> None:
    """Decode raw tensors (N, C, S, S) or (C, S, S) from a .npy file into CIFs and a JSON summary."""
    import numpy as np
    from crystens_core.decoded_output import sidecar_ids, write_decoded
    from crystens_core.pipeline import component_config
    from crystens_core.plugins import get_decoder

    try:
        instance = get_decoder(decoder, **_parse_config(options))
    except (CrystensError, TypeError, ValueError) as exc:
        raise _fail(exc) from exc
    try:
        array = np.load(tensors, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise click.ClickException(f"{tensors}: not a .npy file of tensors (numpy could not read it as one)") from exc
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise click.ClickException(f"{tensors}: expected (N, C, S, S) tensors, got shape {array.shape}")
    ids, problem = sidecar_ids(tensors, len(array))
    if problem:
        click.echo(f"warning: {problem}", err=True)
    summary = write_decoded(Path(output), ids, instance.decode_batch(array, progress=True), {"tensors": str(tensors), "decoder": decoder, "decoder_config": component_config(instance)})
    _echo_decoded(summary, output)


def _echo_decoded(summary: dict[str, Any], folder: Any) -> None:
    from crystens_core.decoded_output import decoded_lines

    for line in decoded_lines(summary, folder):
        click.echo(line)


# -- generators ---------------------------------------------------------------------------
def _pipeline(generator: str, preset: str, batch_size: int | None, seed: int | None, options: tuple[str, ...], **parts: Any):
    """The pipeline of ``crystens train`` and ``crystens run``: the generator built from the command's options."""
    from crystens_core.pipeline import CrystalPipeline
    from crystens_core.plugins import get_generator

    settings = _parse_config(options)
    if "preset" in settings:
        raise click.BadParameter("the preset is chosen with --preset, not --option preset=...", param_hint="--option")
    for key, value in (("batch_size", batch_size), ("seed", seed)):
        if value is not None:
            settings[key] = value
    return CrystalPipeline(get_generator(generator, preset=preset, **settings), **parts)


_train_options = [
    click.option("--generator", required=True, help="Generator name (see `crystens plugins`)."),
    click.option("--data", default="mp20-sample", show_default=True, help="Training data: named dataset, CSV or CIF folder."),
    click.option("--preset", default="small", show_default=True, help="small (CPU minutes) or paper."),
    click.option("--steps", type=int, default=None, help="Total training steps (default: the preset's)."),
    click.option("--batch-size", type=int, default=None),
    click.option("--seed", type=int, default=None),
    click.option("--option", "options", multiple=True, help="Generator setting KEY=VALUE (repeatable)."),
    click.option("--time-limit", type=float, default=None, help="Stop training after this many seconds (a checkpoint is written)."),
    click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from the run folder's newest intact checkpoint."),
    click.option("--allow-data-change", is_flag=True, help="Resume although the checkpoint was trained on other data (refused otherwise)."),
]


def _with_train_options(function):
    for option in reversed(_train_options):
        function = option(function)
    return function


@main.command()
@_with_train_options
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False), help="Run folder.")
def train(generator, data, preset, steps, batch_size, seed, options, time_limit, resume, allow_data_change, run_dir):
    """Train a generator; rerunning the same command resumes from the last checkpoint."""
    try:
        pipeline = _pipeline(generator, preset, batch_size, seed, options)
        pipeline.train_to(run_dir, data, steps=steps, time_limit=time_limit, resume=resume, allow_data_change=allow_data_change, echo=click.echo, progress=True)
    except (CrystensError, ValueError, ImportError) as exc:
        raise _fail(exc) from exc


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-n", "count", type=int, default=100, show_default=True, help="Number of tensors to generate.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder for tensors.npy, the CIFs and summary.json.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--decoder", default="auto", show_default=True)
@click.option("--device", default=None, help="Device to sample on (e.g. cpu, cuda:0) instead of the one the model was saved with.")
def sample(run_dir, count, output, seed, decoder, device):
    """Generate COUNT crystals with the model of RUN_DIR (or a pretrained folder)."""
    from crystens_core.pipeline import CrystalPipeline
    from crystens_core.plugins import get_decoder
    from crystens_core.pretrained import load_generator
    from crystens_core.safe_io import path_inside

    try:
        folder = path_inside(run_dir, "model", what="model folder") if (Path(run_dir) / "model").is_dir() else Path(run_dir)
        model = load_generator(folder, **({"device": device} if device else {}))
        CrystalPipeline(model, decoder=get_decoder(decoder)).sample_to(output, count, seed=seed, echo=click.echo, progress=True)
    except (CrystensError, ValueError, ImportError) as exc:
        raise _fail(exc) from exc


#: The metric-settings option of `run` and `evaluate`.
METRIC_OPTION_HELP = "Metric setting METRIC.KEY=VALUE (repeatable), e.g. ks.symprec=0.01."


def _metric_instances(names: tuple[str, ...], options: tuple[str, ...]) -> dict[str, Any]:
    """Metric name → instance, with ``--metric-option METRIC.KEY=VALUE`` settings."""
    from crystens_core.plugins import get_metric

    settings: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in _parse_config(options, "--metric-option").items():
        metric, dot, setting = key.partition(".")
        if not dot or not setting:
            raise click.BadParameter(f"expected METRIC.KEY=VALUE, got {key!r}", param_hint="--metric-option")
        if metric not in settings:
            raise click.BadParameter(f"{key!r}: {metric!r} is not one of the --metric names ({', '.join(names)})", param_hint="--metric-option")
        settings[metric][setting] = value
    instances = {}
    for name in names:
        try:
            instances[name] = get_metric(name, **settings[name])
        except TypeError as exc:
            raise click.ClickException(f"metric {name!r}: bad setting ({exc})") from exc
    return instances


def _sun_sources(pairs: tuple[str, ...], names: dict[str, Any]) -> dict[str, str]:
    """``--sun-source INPUT=METRIC`` values → input → metric name."""
    from crystens_core.evaluation import SUN_INPUTS

    sources = {}
    for pair in pairs:
        key, equals, metric = pair.partition("=")
        if not equals or key not in SUN_INPUTS or not metric:
            raise click.BadParameter(f"expected INPUT=METRIC with INPUT one of {', '.join(SUN_INPUTS)}, got {pair!r}", param_hint="--sun-source")
        if metric not in names:
            raise click.BadParameter(f"{pair!r}: {metric!r} is not one of the --metric names ({', '.join(names)})", param_hint="--sun-source")
        sources[key] = metric
    return sources


SUN_SOURCE_HELP = "Metric that supplies a S.U.N. input, INPUT=METRIC (is_unique, is_novel, e_above_hull; repeatable); needed only when several metrics supply one (otherwise the first is used and metrics.json records a warning)."


@main.command()
@_with_train_options
@click.option("--metric", "metrics", multiple=True, default=("self-consistency", "ks"), show_default=True, help="Metric name (repeatable).")
@click.option("--metric-option", "metric_options", multiple=True, help=METRIC_OPTION_HELP)
@click.option("--samples", type=int, default=1000, show_default=True, help="Crystals to generate and evaluate.")
@click.option("--decoder", default="auto", show_default=True)
@click.option("--gallery", type=int, default=12, show_default=True, help="Generated structures drawn in the report.")
@click.option("--sun-source", "sun_sources", multiple=True, help=SUN_SOURCE_HELP)
@click.option("-o", "--output", default=None, type=click.Path(file_okay=False), help="Report folder (default runs/<generator>).")
def run(generator, data, preset, steps, batch_size, seed, options, time_limit, resume, allow_data_change, metrics, metric_options, samples, decoder, gallery, sun_sources, output):
    """Train, sample, decode and evaluate in one go; writes the report folder (metrics.json, details.npz, report.md, report.html)."""
    from crystens_core.plugins import get_decoder

    try:
        instances = _metric_instances(metrics, metric_options)
        sources = _sun_sources(sun_sources, instances)
        pipeline = _pipeline(generator, preset, batch_size, seed, options, decoder=get_decoder(decoder), metrics=instances)
        pipeline.run(
            output or Path("runs") / generator,
            data,
            samples=samples,
            seed=0 if seed is None else seed,
            steps=steps,
            time_limit=time_limit,
            resume=resume,
            allow_data_change=allow_data_change,
            gallery=gallery,
            sun_sources=sources,
            echo=click.echo,
            progress=True,
        )
    except (CrystensError, ValueError, ImportError) as exc:
        raise _fail(exc) from exc


@main.command()
@click.option("--reference", required=True, help="Reference dataset: named (mp20-sample, mp-20:test, ...), CSV or CIF folder.")
@click.option("--generated", required=True, type=click.Path(exists=True), help="Folder of CIFs, one CIF, CSV(.gz) with a cif column, .npy of raw tensors, or a `crystens sample` folder.")
@click.option("--metric", "metrics", multiple=True, default=("ks",), show_default=True, help="Metric name (repeatable; see `crystens plugins`).")
@click.option("--metric-option", "metric_options", multiple=True, help=METRIC_OPTION_HELP)
@click.option("--option", "deprecated_metric_options", multiple=True, help="Deprecated spelling of --metric-option (elsewhere --option sets the generator or decoder).")
@click.option("--decoder", default="auto", show_default=True, help="Decoder for .npy tensors.")
@click.option("--decoder-option", "decoder_options", multiple=True, help="Decoder setting KEY=VALUE (repeatable).")
@click.option("--gallery", type=int, default=12, show_default=True, help="Generated structures drawn in the report.")
@click.option("--title", default=None, help="Report heading.")
@click.option("--sun-source", "sun_sources", multiple=True, help=SUN_SOURCE_HELP)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Report folder.")
def evaluate(reference, generated, metrics, metric_options, deprecated_metric_options, decoder, decoder_options, gallery, title, sun_sources, output):
    """Evaluate generated crystals against a reference set; writes metrics.json, details.npz, report.md and report.html.

    Unreadable or empty files, unknown elements and failed decodings are listed per
    item and left out; structures with overlapping atoms are listed and still evaluated.
    """
    from crystens_core.data import load_dataset
    from crystens_core.evaluation import read_generated
    from crystens_core.pipeline import write_evaluation

    if deprecated_metric_options:
        warnings.warn("`crystens evaluate --option` is deprecated: use --metric-option METRIC.KEY=VALUE (as `crystens run` does)", FutureWarning, stacklevel=1)
    try:
        instances = _metric_instances(metrics, deprecated_metric_options + metric_options)
        sources = _sun_sources(sun_sources, instances)
        generated_set = read_generated(generated, decoder=decoder, decoder_config=_parse_config(decoder_options, "--decoder-option"), progress=True)
        reference_set = load_dataset(reference, progress=True)
    except (CrystensError, ValueError, TypeError) as exc:
        raise _fail(exc) from exc
    if len(reference_set) == 0:
        raise click.ClickException(f"{reference}: no usable reference structures ({reference_set.skipped})")
    header = {"command": "evaluate", "reference_dataset": reference, "generated_path": str(generated)}
    write_evaluation(output, generated_set, reference_set, instances, header=header, title=title or f"crystens evaluate: {Path(generated).name}", gallery=gallery, sun_sources=sources, echo=click.echo)


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder for compare.md, compare.html, compare.json and figures/.")
def compare(runs, output):
    """Compare report folders (from `crystens evaluate` or `crystens run`): one table of every figure and overlaid distributions."""
    from crystens_core.report import write_comparison

    try:
        paths = write_comparison(runs, output)
    except ValueError as exc:
        raise _fail(exc) from exc
    click.echo(f"compared {len(runs)} runs: {paths['html']} ({paths['markdown'].name}, {paths['json'].name})")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
