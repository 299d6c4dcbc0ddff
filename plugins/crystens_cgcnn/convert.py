"""Convert the original CGCNN ``*.pth.tar`` checkpoints ONCE into safetensors + JSON.

Usage::

    python -m crystens_cgcnn.convert ../shared/weights/cgcnn [-o plugins/crystens_cgcnn/weights]

For each regression model (see :data:`crystens_cgcnn.properties.PROPERTIES`) this
writes ``<property>.safetensors`` (the state dict, float32, exactly as stored) and
``<property>.json`` (architecture read from the checkpoint's ``args`` and weight
shapes, graph settings, the target normaliser's mean/std, units, and the source
file's name and sha256), plus ``atom_init.json`` and the MIT ``LICENSE`` of the
weights. The checkpoints are pickles (``torch.load(weights_only=False)``): this is
the only place crystens reads them. The semi-metal classifier is not converted
(it is not a regression model).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from crystens_core.data.sources import sha256_of
from crystens_cgcnn.graph import DMIN, MAX_NEIGHBORS, RADIUS, STEP, gaussian_centres
from crystens_cgcnn.properties import ATOM_INIT_NAME, FORMAT, PROPERTIES, SKIPPED_SOURCES, WEIGHTS_DIR

LICENSE_HEADER = (
    "The CGCNN weights in this folder (*.safetensors, converted from the *.pth.tar files of\n"
    "https://github.com/txie-93/cgcnn, folder pre-trained/) and atom_init.json are by Tian Xie,\n"
    "under the MIT licence below. The models were trained on Materials Project data (CC-BY 4.0;\n"
    "Jain et al., APL Materials 1, 011002 (2013)); cite Xie & Grossman, Phys. Rev. Lett. 120,\n"
    "145301 (2018) and the Materials Project when using them.\n\n"
)


def convert_checkpoint(source: Path, name: str, output: Path) -> dict:
    """Convert one checkpoint; returns the JSON record written beside the safetensors file."""
    import torch
    from safetensors.torch import save_file

    checkpoint = torch.load(source, map_location="cpu", weights_only=False)  # a pickle: trusted, converted once
    args = checkpoint["args"]
    if args.get("task") != "regression":
        raise ValueError(f"{source}: task {args.get('task')!r}, only regression models are converted")
    state = {key: value.detach().to(torch.float32).contiguous() for key, value in checkpoint["state_dict"].items()}
    orig_atom_fea_len = int(state["embedding.weight"].shape[1])
    atom_fea_len = int(args["atom_fea_len"])
    nbr_fea_len = int(state["convs.0.fc_full.weight"].shape[1]) - 2 * atom_fea_len
    if nbr_fea_len != len(gaussian_centres()):
        raise ValueError(f"{source}: {nbr_fea_len} distance features, the graph settings give {len(gaussian_centres())}")
    if int(state["fc_out.weight"].shape[0]) != 1:
        raise ValueError(f"{source}: {state['fc_out.weight'].shape[0]} outputs, expected 1")
    spec = PROPERTIES[name]
    record = {
        "format": FORMAT,
        "property": name,
        "units": spec.units,
        "description": spec.description,
        "architecture": {
            "orig_atom_fea_len": orig_atom_fea_len,
            "nbr_fea_len": nbr_fea_len,
            "atom_fea_len": atom_fea_len,
            "n_conv": int(args["n_conv"]),
            "h_fea_len": int(args["h_fea_len"]),
            "n_h": int(args["n_h"]),
        },
        "graph": {"radius": RADIUS, "max_num_nbr": MAX_NEIGHBORS, "dmin": DMIN, "step": STEP, "var": STEP},
        "normalizer": {"mean": float(checkpoint["normalizer"]["mean"]), "std": float(checkpoint["normalizer"]["std"])},
        "source": {
            "file": source.name,
            "sha256": sha256_of(source),
            "url": "https://github.com/txie-93/cgcnn/tree/master/pre-trained",
            "licence": "MIT, Copyright (c) 2018 Tian Xie",
            "target": args["data_options"][-1],
            "training_data": Path(args["data_options"][0]).name,
            "train_val_test": [args.get("train_size"), args.get("val_size"), args.get("test_size")],
            "epoch": checkpoint.get("epoch"),
            "best_validation_mae": float(checkpoint["best_mae_error"]),
        },
    }
    save_file(state, str(output / f"{name}.safetensors"), metadata={"format": "pt", "property": name, "source": source.name})
    (output / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def convert(source_dir: str | Path, output: str | Path = WEIGHTS_DIR) -> list[Path]:
    """Convert every regression checkpoint of ``source_dir`` into ``output``; returns the files written.

    Raises:
        FileNotFoundError: ``source_dir`` lacks a checkpoint or ``atom_init.json``.
    """
    source_dir, output = Path(source_dir), Path(output)
    missing = [f"{p.source}.pth.tar" for p in PROPERTIES.values() if not (source_dir / f"{p.source}.pth.tar").is_file()]
    if not (source_dir / ATOM_INIT_NAME).is_file():
        missing.append(ATOM_INIT_NAME)
    if missing:
        raise FileNotFoundError(f"{source_dir}: missing {', '.join(missing)}")
    output.mkdir(parents=True, exist_ok=True)
    for name, spec in PROPERTIES.items():
        convert_checkpoint(source_dir / f"{spec.source}.pth.tar", name, output)
    shutil.copyfile(source_dir / ATOM_INIT_NAME, output / ATOM_INIT_NAME)
    licence = source_dir / "LICENSE"
    (output / "LICENSE").write_text(LICENSE_HEADER + (licence.read_text() if licence.is_file() else ""))
    return sorted(output.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crystens_cgcnn.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with the original *.pth.tar files and atom_init.json")
    parser.add_argument("-o", "--output", type=Path, default=WEIGHTS_DIR, help=f"where to write (default {WEIGHTS_DIR})")
    options = parser.parse_args(argv)
    files = convert(options.source, options.output)
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f.stat().st_size:>9,d}  {f}")
    print(f"{total:>9,d}  bytes in total; not converted: {', '.join(SKIPPED_SOURCES)} (classifier)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
