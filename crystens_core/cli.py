"""The ``crystens`` command line."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from crystens_core.errors import CrystensError


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _parse_config(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("max_sites=52", "layers=[\\"a\\"]")`` → keyword arguments (values parsed as JSON when they can be)."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


@click.group()
@click.version_option(package_name="crystens")
def main() -> None:
    """crystens: train, compare and extend crystal generators on the CrysTens representation."""


# -- plugins ----------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List every plugin (built-in or installed), its version, components and load error."""
    from crystens_core.plugins import load_plugins

    records = [info.as_dict() for info in load_plugins().values()]
    if as_json:
        click.echo(json.dumps({"plugins": records}, indent=2))
        return
    for record in records:
        origin = "built-in" if record["builtin"] else (record["distribution"] or "in-process")
        state = "disabled" if record["disabled"] else ("BROKEN" if record["error"] else "ok")
        click.echo(f"{record['name']} {record['version'] or ''} [{origin}] {state}")
        for component in record["components"]:
            click.echo(f"    {component}")
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
    from crystens_core.encoding import metadata_path
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
    meta = metadata_path(tensors)
    ids = json.loads(meta.read_text()).get("ids") if meta.is_file() else None
    if not ids or len(ids) != len(array):
        ids = [f"{i:06d}" for i in range(len(array))]
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    records, reasons = [], Counter()
    for tensor_id, result in zip(ids, instance.decode_batch(array, progress=True)):
        record = {"id": tensor_id, **result.summary()}
        if result.ok:
            cif_path = folder / f"{tensor_id}.cif"
            cif_path.write_text(result.to_cif())
            record["cif"] = cif_path.name
        else:
            reasons[result.reason.split(":")[0]] += 1
        records.append(record)
    decoded = sum(r["ok"] for r in records)
    summary = {
        "tensors": str(tensors),
        "decoder": decoder,
        "decoder_config": instance.get_config() if hasattr(instance, "get_config") else {},
        "count": len(records),
        "decoded": decoded,
        "failures_by_reason": dict(reasons),
        "results": records,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    click.echo(f"decoded {decoded} of {len(records)} tensors into {folder} (summary.json)")
    for reason, count in reasons.most_common():
        click.echo(f"  failed: {reason} ({count})")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
