"""The report folder of `crystens evaluate` / `crystens run`, and `crystens compare`.

A report folder holds

- ``metrics.json``: every figure, the input counts, the skipped inputs with reasons and the settings;
- ``details.npz``: per-structure arrays, keys ``generated/<metric>/<name>`` and
  ``reference/<metric>/<name>`` (the ``structure`` group holds a, b, c, α, β, γ,
  space group, ...; see :func:`crystens_core.evaluation.structure_property_arrays`)
  and ``ids`` (the generated items, aligned with every generated array);
- ``figures/*.png``, ``report.md`` and a self-contained ``report.html`` (images embedded
  as base64 PNG) with the paper's figures redrawn from this run: lattice distributions
  (Figs 4–5), space group and atomic number (Fig. 6), the figures each metric that ran
  contributes through its optional ``figures(details, **context)`` method (e.g. the
  property violins of Fig. 7, the energy above hull of Fig. 8; see :class:`Figure` and
  :func:`metric_figures`) and a gallery of generated structures (Figs 9–11).

The report names no metric: it draws from the ``structure`` group it computes itself,
from what the metrics contribute, and from detail names of the metric contract.

matplotlib (``crystens[eval]``) is imported inside the drawing functions, with the Agg
canvas (no display); without it the report is written without figures and says so.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crystens_core.evaluation import PROPERTY_LABELS, STABILITY_THRESHOLD
from crystens_core.safe_io import atomic_file, json_safe, read_json, write_bytes_atomic, write_json_atomic, write_text_atomic

DETAILS_FILE = "details.npz"
METRICS_FILE = "metrics.json"
STRUCTURE_GROUP = "structure"
#: How many skipped/warned items the Markdown and HTML list (metrics.json has them all).
LISTED_ISSUES = 50

#: Axis labels of per-structure values other plugins are expected to report.
DETAIL_LABELS: dict[str, str] = {
    **PROPERTY_LABELS,
    "e_above_hull": "energy above hull (eV/atom)",
    "formation_energy": "formation energy (eV/atom)",
    "formation_energy_per_atom": "formation energy (eV/atom)",
    "final_energy": "final energy (eV/atom)",
    "final_energy_per_atom": "final energy (eV/atom)",
    "energy_per_atom": "energy (eV/atom)",
    "band_gap": "band gap (eV)",
    "bulk_modulus": "bulk modulus (log10 GPa)",
    "shear_modulus": "shear modulus (log10 GPa)",
    "fermi_energy": "Fermi energy (eV)",
    "efermi": "Fermi energy (eV)",
    "poisson_ratio": "Poisson ratio",
}

LATTICE = ("a", "b", "c", "alpha", "beta", "gamma")
REFERENCE_COLOUR = "0.55"


@dataclass
class Figure:
    """One report figure: a file stem, a title, a caption and either the PNG bytes or a drawing function.

    This is what a metric's optional ``figures(details, **context)`` method returns
    (see ``crystens_register_metrics`` in :mod:`crystens_core.hookspecs`).

    Attributes:
        key: file stem of ``figures/<key>.png`` and the HTML anchor (letters, digits, ``-``, ``_``).
        title: heading above the figure.
        caption: text below it.
        png: the PNG bytes, when the plugin drew the picture itself; or
        draw: a function called with an empty matplotlib Figure (Agg canvas, ``size`` inches,
            constrained layout) that draws into it; the report saves it as PNG.
        size: (width, height) in inches for ``draw``.
        shows: the detail names the figure draws (they are left out of the "other
            values" figure); None: every detail of the metric.
    """

    key: str
    title: str
    caption: str
    png: bytes | None = None
    draw: Callable[[Any], None] | None = None
    size: tuple[float, float] = (9.0, 4.2)
    shows: tuple[str, ...] | None = None

    def render(self) -> Figure:
        """This figure with its PNG bytes (drawn now when it has ``draw``)."""
        if self.png is not None:
            if not isinstance(self.png, (bytes, bytearray)) or not bytes(self.png).startswith(b"\x89PNG"):
                raise ValueError(f"figure {self.key!r}: png is not PNG bytes")
            return self
        if self.draw is None:
            raise ValueError(f"figure {self.key!r}: give png bytes or a draw function")
        figure = new_figure(*self.size)
        self.draw(figure)
        return Figure(self.key, self.title, self.caption, png_bytes(figure), shows=self.shows)


# -- details.npz -----------------------------------------------------------------------------
def save_details(path: str | Path, details: dict[str, dict[str, dict[str, np.ndarray]]], ids: Sequence[str] | None = None) -> None:
    """Write ``details`` (metric → side → name → array) as ``side/metric/name`` keys of an ``.npz``."""
    arrays: dict[str, np.ndarray] = {}
    for metric, sides in details.items():
        for side, named in sides.items():
            for name, values in named.items():
                arrays[f"{side}/{metric}/{name}"] = np.asarray(values, dtype=float)
    if ids is not None:
        arrays["ids"] = np.asarray([str(i) for i in ids], dtype=str)
    with atomic_file(path) as handle:
        np.savez_compressed(handle, **arrays)


def load_details(path: str | Path) -> tuple[dict[str, dict[str, dict[str, np.ndarray]]], list[str]]:
    """Read a ``details.npz``: ``(metric → side → name → array, ids)``."""
    details: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    ids: list[str] = []
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            if key == "ids":
                ids = [str(i) for i in data[key]]
                continue
            side, _, rest = key.partition("/")
            metric, _, name = rest.rpartition("/")
            details.setdefault(metric, {}).setdefault(side, {})[name] = data[key]
    return details, ids


def metric_side(details: dict, metric: str, side: str) -> dict[str, np.ndarray]:
    return details.get(metric, {}).get(side, {})


def finite_values(values: Any) -> np.ndarray:
    """The finite values of an array-like (None → empty), flattened."""
    array = np.asarray(values if values is not None else [], dtype=float).ravel()
    return array[np.isfinite(array)]


def axis_label(name: str) -> str:
    """The axis label of a detail name (units where known)."""
    return DETAIL_LABELS.get(name, name.replace("_", " "))


# -- drawing -----------------------------------------------------------------------------------
def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure) -> bytes:
    """A matplotlib figure as PNG bytes (100 dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _bins(values: np.ndarray, discrete: bool, fixed: tuple[float, float] | None = None) -> np.ndarray:
    if fixed is not None:
        low, high = fixed
        return np.arange(low - 0.5, high + 1.5) if discrete else np.linspace(low, high, 41)
    if discrete:
        low, high = np.floor(values.min()), np.ceil(values.max())
        step = max(1.0, np.ceil((high - low + 1) / 120))
        return np.arange(low - 0.5, high + step + 0.5, step)
    inner_low, inner_high = np.percentile(values, [0.5, 99.5])
    spread = inner_high - inner_low
    # keep the extremes unless they lie far outside the bulk (a generated a = 900 Å would flatten the rest)
    low = values.min() if inner_low - values.min() <= 0.25 * spread else inner_low
    high = values.max() if values.max() - inner_high <= 0.25 * spread else inner_high
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, 41)


def draw_histograms(axis, series: Sequence[tuple[str, np.ndarray, str]], name: str, *, reference: np.ndarray | None = None, discrete: bool = False, fixed: tuple[float, float] | None = None, title: str = "", density: bool = True) -> None:
    """Histograms of one property: the reference filled grey, each series as a step line.

    Far outliers (beyond the 0.5–99.5 percentiles of everything by more than a quarter of
    that range) are drawn in the edge bins and counted as off-scale in the legend.
    ``density`` False draws counts (for a single series).
    """
    reference = finite_values(reference) if reference is not None else np.zeros(0)
    series = [(label, finite_values(values), colour) for label, values, colour in series]
    everything = np.concatenate([reference] + [values for _, values, _ in series])
    axis.set_title(title or axis_label(name), fontsize=10)
    axis.set_xlabel(axis_label(name), fontsize=9)
    axis.tick_params(labelsize=8)
    if everything.size == 0:
        axis.text(0.5, 0.5, "no values", ha="center", va="center", transform=axis.transAxes, color="0.4")
        return
    bins = _bins(everything, discrete, fixed)
    low, high = bins[0], bins[-1]

    def legend(label: str, values: np.ndarray) -> str:
        outside = int(((values < low) | (values > high)).sum())
        return f"{label} (n={values.size}{f', {outside} off-scale' if outside else ''})"

    if reference.size:
        axis.hist(np.clip(reference, low, high), bins=bins, density=density, color=REFERENCE_COLOUR, alpha=0.55, label=legend("reference", reference))
    for label, values, colour in series:
        if values.size:
            axis.hist(np.clip(values, low, high), bins=bins, density=density, histtype="step", linewidth=1.6, color=colour, label=legend(label, values))
    if discrete:
        from matplotlib.ticker import MaxNLocator

        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("density" if density else "structures", fontsize=9)
    axis.legend(fontsize=7, frameon=False, loc="best")


def is_binary(*arrays: Any) -> bool:
    """True when every finite value of every array is 0 or 1 (flags such as ``valid``)."""
    values = np.concatenate([finite_values(a) for a in arrays if a is not None] or [np.zeros(0)])
    return values.size > 0 and bool(np.isin(values, (0.0, 1.0)).all())


def draw_shares(axis, series: Sequence[tuple[str, np.ndarray, str]], name: str, *, reference: np.ndarray | None = None, title: str = "") -> None:
    """Bars of the share of 1s (of the finite values) per series, for flags such as ``valid`` or ``covered``."""
    rows = ([("reference", finite_values(reference), REFERENCE_COLOUR)] if reference is not None and finite_values(reference).size else []) + [(label, finite_values(values), colour) for label, values, colour in series]
    for position, (label, values, colour) in enumerate(rows):
        share = float(values.mean()) if values.size else 0.0
        axis.barh(position, share, height=0.5, color=colour, alpha=0.8)
        axis.text(min(share, 0.98), position, f" {share:.1%} of {values.size}", va="center", ha="left" if share < 0.7 else "right", fontsize=8)
    axis.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=8)
    axis.set_ylim(-0.75, len(rows) - 0.25)
    axis.set_xlim(0, 1)
    axis.set_xlabel(f"share with {axis_label(name)} = 1", fontsize=9)
    axis.set_title(title or axis_label(name), fontsize=10)
    axis.tick_params(labelsize=8)


def _statistic_title(name: str, figures: dict[str, Any]) -> str:
    """The axis label, with the two-sample K-S statistic of the property when a metric reports one.

    By the figure-naming convention of the metric contract a K-S statistic of property
    ``p`` is named ``ks_<p>`` (``ks_atomic_number`` for the site-pooled atomic numbers);
    when several metrics report it, the title names the metric it was taken from.
    """
    key = f"ks_{'atomic_number' if name == 'atomic_number_sites' else name}"
    found = [(metric, values[key]) for metric, values in (figures or {}).items() if isinstance(values, dict) and isinstance(values.get(key), (int, float)) and np.isfinite(values[key])]
    if not found:
        return axis_label(name)
    metric, value = found[0]
    return f"{axis_label(name)}   K-S D = {value:.3f}" + (f" ({metric})" if len(found) > 1 else "")


def figure_lattice(details: dict, figures: dict) -> Figure | None:
    """Paper Figs 4–5: a, b, c and α, β, γ, reference vs generated."""
    generated, reference = metric_side(details, STRUCTURE_GROUP, "generated"), metric_side(details, STRUCTURE_GROUP, "reference")
    if not any(name in generated for name in LATTICE):
        return None
    figure = new_figure(13, 7)
    axes = figure.subplots(2, 3)
    for axis, name in zip(axes.ravel(), LATTICE):
        draw_histograms(axis, [("generated", generated.get(name), "C0")], name, reference=reference.get(name), title=_statistic_title(name, figures))
    figure.suptitle("Lattice parameters (paper Figs 4–5)")
    return Figure("lattice", "Lattice parameters", "Distributions of the lattice lengths a, b, c (Å) and angles α, β, γ (degrees) of the reference and the generated structures (paper Figs 4–5).", png_bytes(figure))


def figure_spacegroup_atomic_number(details: dict, figures: dict) -> Figure | None:
    """Paper Fig. 6: space group numbers and atomic numbers."""
    generated, reference = metric_side(details, STRUCTURE_GROUP, "generated"), metric_side(details, STRUCTURE_GROUP, "reference")
    if "spacegroup" not in generated and "atomic_number_sites" not in generated:
        return None
    figure = new_figure(13, 4)
    axes = figure.subplots(1, 2)
    draw_histograms(axes[0], [("generated", generated.get("spacegroup"), "C0")], "spacegroup", reference=reference.get("spacegroup"), discrete=True, fixed=(1, 230), title=_statistic_title("spacegroup", figures))
    top = int(max(94, np.nanmax(np.concatenate([finite_values(generated.get("atomic_number_sites")), finite_values(reference.get("atomic_number_sites")), [1.0]]))))
    draw_histograms(axes[1], [("generated", generated.get("atomic_number_sites"), "C0")], "atomic_number_sites", reference=reference.get("atomic_number_sites"), discrete=True, fixed=(1, top), title=_statistic_title("atomic_number_sites", figures))
    figure.suptitle("Space group and atomic number (paper Fig. 6)")
    return Figure("spacegroup-atomic-number", "Space group and atomic number", "Space group numbers (spglib) per structure and atomic numbers over every site, reference vs generated (paper Fig. 6).", png_bytes(figure))


def figure_composition(details: dict, figures: dict) -> Figure | None:
    """Density, elements per structure and sites per cell."""
    generated, reference = metric_side(details, STRUCTURE_GROUP, "generated"), metric_side(details, STRUCTURE_GROUP, "reference")
    names = [n for n in ("density", "n_elements", "n_sites") if n in generated]
    if not names:
        return None
    figure = new_figure(13, 3.8)
    axes = np.atleast_1d(figure.subplots(1, len(names)))
    for axis, name in zip(axes, names):
        draw_histograms(axis, [("generated", generated.get(name), "C0")], name, reference=reference.get(name), discrete=name != "density", title=_statistic_title(name, figures))
    return Figure("density-elements-sites", "Density, elements and sites", "Density (g/cm³), number of elements and number of sites per structure, reference vs generated.", png_bytes(figure))


def violin(axis, data: list[np.ndarray], labels: list[str], colours: list[str]) -> None:
    positions = [i + 1 for i, values in enumerate(data) if values.size]
    shown = [values for values in data if values.size]
    spread = [values for values in shown if values.size >= 2 and np.ptp(values) > 0]
    if len(spread) == len(shown) and shown:
        parts = axis.violinplot(shown, positions=positions, showmedians=True, widths=0.8)
        for body, position in zip(parts["bodies"], positions):
            body.set_facecolor(colours[position - 1])
            body.set_alpha(0.6)
        for key in ("cmins", "cmaxes", "cbars", "cmedians"):
            if key in parts:
                parts[key].set_color("0.25")
                parts[key].set_linewidth(1.0)
    else:
        for position, values in zip(positions, shown):
            axis.scatter(np.full(values.size, position), values, s=8, color=colours[position - 1])
    axis.set_xticks(range(1, len(labels) + 1), [f"{label}\n(n={values.size})" for label, values in zip(labels, data)], fontsize=8)


def energies_above_hull(details: dict, source: str | None = None) -> tuple[str, np.ndarray] | None:
    """``(metric, generated e_above_hull)`` from ``source`` (the metric the S.U.N. rate used, see
    :func:`crystens_core.evaluation.sun_inputs`) or, without one, the first metric that reports it."""
    if source is not None:
        values = metric_side(details, source, "generated").get("e_above_hull")
        return None if values is None else (source, values)
    for metric, sides in details.items():
        if "e_above_hull" in sides.get("generated", {}):
            return metric, sides["generated"]["e_above_hull"]
    return None


def _element_colours() -> dict[str, tuple[float, float, float]]:
    import pymatgen.vis
    from monty.serialization import loadfn

    scheme = loadfn(str(Path(pymatgen.vis.__path__[0]) / "ElementColorSchemes.yaml"))["Jmol"]
    return {element: tuple(c / 255 for c in rgb) for element, rgb in scheme.items()}


def draw_structure(axis, structure, title: str, colours: dict[str, tuple[float, float, float]]) -> None:
    """The atoms of the unit cell (coloured by element, sized by atomic radius) and the cell edges, on a 3-D axis."""
    matrix = structure.lattice.matrix
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float) @ matrix
    for a in range(8):
        for b in range(a + 1, 8):
            if bin(a ^ b).count("1") == 1:  # corners that differ in one fractional coordinate
                axis.plot(*zip(corners[a], corners[b]), color="0.35", linewidth=0.8)
    coordinates = structure.cart_coords
    elements = [site.specie.symbol for site in structure]
    extent = max(float(np.ptp(corners, axis=0).max()), 1e-3)
    for element in sorted(set(elements), key=lambda e: -structure.composition[e]):
        mask = np.array([e == element for e in elements])
        radius = structure.composition.elements[[el.symbol for el in structure.composition.elements].index(element)].atomic_radius or 1.0
        size = float(np.clip(900 * (float(radius) / extent) ** 2 * 9, 12, 400))
        axis.scatter(*coordinates[mask].T, s=size, color=colours.get(element, (0.5, 0.5, 0.5)), edgecolors="0.2", linewidths=0.4, depthshade=False, label=element)
    axis.set_box_aspect(np.maximum(np.ptp(corners, axis=0), extent * 0.05))
    axis.set_axis_off()
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7, frameon=False, loc="lower left", markerscale=0.6, handletextpad=0.2, borderpad=0.1, ncols=min(4, len(set(elements))))


def gallery_order(structures: Sequence, details: dict, source: str | None = None) -> list[int]:
    """Indices of the structures to show: most stable first when energies above hull exist, else input order."""
    present = [i for i, s in enumerate(structures) if s is not None]
    found = energies_above_hull(details, source)
    if found is not None and len(found[1]) == len(structures):
        energies = np.asarray(found[1], dtype=float)
        return sorted(present, key=lambda i: (not np.isfinite(energies[i]), energies[i] if np.isfinite(energies[i]) else 0.0))
    return present


def figure_gallery(structures: Sequence, ids: Sequence[str], details: dict, count: int = 12, source: str | None = None) -> Figure | None:
    """Paper Figs 9–11: generated structures drawn in their unit cells."""
    order = gallery_order(structures, details, source)[:count]
    if not order:
        return None
    import warnings

    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3-D projection)

    colours = _element_colours()
    found = energies_above_hull(details, source)
    columns = min(4, len(order))
    rows = int(np.ceil(len(order) / columns))
    figure = new_figure(3.4 * columns, 3.5 * rows)
    for position, index in enumerate(order):
        axis = figure.add_subplot(rows, columns, position + 1, projection="3d")
        structure = structures[index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            formula = structure.composition.reduced_formula
        title = f"{formula}  ({ids[index]})"
        if found is not None and len(found[1]) == len(structures) and np.isfinite(found[1][index]):
            title += f"\nE_hull {found[1][index]:.3f} eV/atom"
        draw_structure(axis, structure, title, colours)
    figure.suptitle("Generated structures in their unit cells (paper Figs 9–11)")
    how = f"sorted by energy above hull, most stable first (metric `{found[0]}`)" if found is not None and len(found[1]) == len(structures) else "in input order"
    return Figure("gallery", "Generated structures", f"{len(order)} generated structures, {how}: atoms of the unit cell coloured by element (Jmol colours), cell edges in grey (paper Figs 9–11).", png_bytes(figure))


def _other_panels(details: dict, shown: dict[str, set[str] | None]) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """Per-structure values no other figure draws; ``shown``: metric → the detail names its own figures draw (None: all)."""
    drawn = set(metric_side(details, STRUCTURE_GROUP, "generated"))
    panels = []
    for metric, sides in details.items():
        if metric == STRUCTURE_GROUP or (metric in shown and shown[metric] is None):
            continue
        for name, values in sides.get("generated", {}).items():
            if name in drawn or name in (shown.get(metric) or ()):  # drawn elsewhere (a metric's own a, b, c are in the structure figures)
                continue
            panels.append((metric, name, values, sides.get("reference", {}).get(name)))
    return panels


def figure_other(details: dict, limit: int = 12, shown: dict[str, set[str] | None] | None = None) -> Figure | None:
    """Histograms of every other per-structure value the metrics reported."""
    panels = _other_panels(details, shown or {})[:limit]
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    figure = new_figure(4.4 * columns, 3.4 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axis, (metric, name, generated, reference) in zip(axes, panels):
        values = finite_values(generated)
        if is_binary(generated, reference):
            draw_shares(axis, [("generated", generated, "C0")], name, reference=reference, title=f"{metric}: {axis_label(name)}")
            continue
        discrete = values.size > 0 and np.all(values == np.round(values)) and np.ptp(values) <= 200
        draw_histograms(axis, [("generated", generated, "C0")], name, reference=reference, discrete=bool(discrete), title=f"{metric}: {axis_label(name)}")
    for axis in axes[len(panels) :]:
        axis.set_axis_off()
    return Figure("other-details", "Other per-structure values", "Histograms of the other per-structure values the metrics reported (generated, and reference where the metric gives one).", png_bytes(figure))


def _call_figures(method, details: dict, context: dict[str, Any]) -> Any:
    """``method(details, **context)``, passing only the keywords its signature accepts."""
    import inspect

    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return method(details)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return method(details, **context)
    return method(details, **{k: v for k, v in context.items() if k in parameters})


def _figure_key(text: Any) -> str:
    """``text`` as a figure key: characters other than letters, digits, ``-`` and ``_`` become ``-``."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text))


def metric_figures(metrics: dict[str, Any], details: dict, figures: dict, settings: dict[str, Any] | None = None) -> tuple[list[Figure], dict[str, set[str] | None], dict[str, str]]:
    """The figures the metrics that ran contribute through their optional ``figures`` method.

    Each metric with details in this run and a callable ``figures`` is called as
    ``figures(details, name=..., values=..., settings=..., all_details=...)`` (only the
    keywords its signature takes): ``details`` its own ``{"generated": ..., "reference": ...}``,
    ``values`` its figures, ``settings`` the evaluation settings, ``all_details`` every
    metric's. A metric that fails to draw loses its figure, not the report.

    Returns:
        ``(figures, shown, errors)``: the drawn figures in metric order (a key two metrics
        share gets the metric name in front), metric → detail names its figures draw
        (None: all), metric → error message.
    """
    drawn: list[Figure] = []
    shown: dict[str, set[str] | None] = {}
    errors: dict[str, str] = {}
    keys: set[str] = set()
    for name, metric in metrics.items():
        method = getattr(metric, "figures", None)
        if not callable(method) or name not in details:
            continue
        context = {"name": name, "values": (figures or {}).get(name, {}), "settings": settings or {}, "all_details": details}
        try:
            contributed = [f.render() for f in (_call_figures(method, details[name], context) or [])]
            for figure in contributed:
                if not isinstance(figure, Figure):
                    raise TypeError(f"figures() must return crystens_core.report.Figure objects, got {type(figure).__name__}")
        except Exception as exc:  # one metric's drawing must not lose the report
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        for figure in contributed:
            key = _figure_key(figure.key) or "figure"
            if key in keys or key in CORE_FIGURE_KEYS:
                key = _figure_key(f"{name}-{key}")
            keys.add(key)
            drawn.append(Figure(key, figure.title, figure.caption, figure.png, shows=figure.shows))
            if figure.shows is None:
                shown[name] = None
            elif shown.get(name, set()) is not None:
                shown[name] = set(shown.get(name) or ()) | set(figure.shows)
    return drawn, shown, errors


CORE_FIGURE_KEYS = ("lattice", "spacegroup-atomic-number", "density-elements-sites", "gallery", "other-details")


def draw_report_figures(details: dict, figures: dict, structures: Sequence, ids: Sequence[str], *, gallery: int = 12, threshold: float = STABILITY_THRESHOLD, metrics: dict[str, Any] | None = None, settings: dict[str, Any] | None = None, energy_source: str | None = None, errors: dict[str, str] | None = None) -> list[Figure]:
    """Every figure the data allow, in the paper's order: the structure figures (Figs 4–6),
    what each metric that ran contributes (in run order), the gallery (Figs 9–11), the other values.

    Args:
        metrics: metric name → instance, for their ``figures`` methods.
        settings: the evaluation settings handed to them (``stability_threshold_ev_per_atom``
            defaults to ``threshold``).
        energy_source: the metric whose ``e_above_hull`` orders the gallery.
        errors: filled with metric name → why its figures are missing.
    """
    settings = {"stability_threshold_ev_per_atom": threshold, **(settings or {})}
    contributed, shown, failed = metric_figures(metrics or {}, details, figures, settings)
    if errors is not None:
        errors.update(failed)
    drawn = [
        figure_lattice(details, figures),
        figure_spacegroup_atomic_number(details, figures),
        figure_composition(details, figures),
        *contributed,
        figure_gallery(structures, ids, details, gallery, energy_source) if gallery > 0 else None,
        figure_other(details, shown=shown),
    ]
    return [figure for figure in drawn if figure is not None]


# -- text ---------------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """Four significant digits for numbers, ``n/a`` for missing/NaN."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float, np.number)):
        value = float(value)
        if not np.isfinite(value):
            return "n/a"
        return f"{int(value)}" if value.is_integer() and abs(value) < 1e9 else f"{value:.4g}"
    return str(value)


def _summary_lines(record: dict[str, Any]) -> list[str]:
    generated, reference = record.get("generated", {}), record.get("reference", {})
    lines = []
    if "generator" in record:
        lines.append(f"Generator `{record['generator']}` (preset `{record.get('preset')}`), trained on `{record.get('data')}` for {record.get('steps')} steps.")
    lines.append(
        f"Generated: `{generated.get('source', '')}` ({generated.get('kind', '')}): {generated.get('items', 0)} items, "
        f"{generated.get('structures', 0)} structures evaluated, {generated.get('skipped', 0)} without a structure, "
        f"{generated.get('warnings', 0)} with warnings."
    )
    lines.append(f"Reference: `{reference.get('source', '')}`: {reference.get('structures', 0)} structures ({reference.get('skipped', 0)} rows skipped).")
    settings = generated.get("settings") or {}
    if settings.get("decoder"):
        lines.append(f"Tensors decoded with the `{settings['decoder']}` decoder.")
    return lines


def metric_table(values: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows for one metric: K-S pairs (``ks_X``/``pvalue_X``) side by side, other figures one per row."""
    pairs = [key[3:] for key in values if key.startswith("ks_") and f"pvalue_{key[3:]}" in values]
    if len(pairs) < 2:
        return ["figure", "value"], [[key, format_value(value)] for key, value in values.items()]
    paired = {f"ks_{p}" for p in pairs} | {f"pvalue_{p}" for p in pairs}
    counted = [p for p in pairs if f"n_used_{p}" in values]
    if counted:  # the values each test was computed on, in their own column
        paired |= {f"n_used_{p}" for p in counted} | {f"n_reference_used_{p}" for p in counted}

        def used(p: str) -> str:
            generated, reference = values.get(f"n_used_{p}"), values.get(f"n_reference_used_{p}")
            return format_value(generated) if reference is None else f"{format_value(generated)} / {format_value(reference)}"

        rows = [[p, format_value(values[f"ks_{p}"]), format_value(values[f"pvalue_{p}"]), used(p)] for p in pairs]
        rows += [[key, format_value(value), "", ""] for key, value in values.items() if key not in paired]
        return ["property", "K-S D", "p-value", "n used (generated / reference)"], rows
    rows = [[p, format_value(values[f"ks_{p}"]), format_value(values[f"pvalue_{p}"])] for p in pairs]
    rows += [[key, format_value(value), ""] for key, value in values.items() if key not in paired]
    return ["property", "K-S D", "p-value"], rows


def _metric_sections(record: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    sections = [(name, *metric_table(values)) for name, values in record.get("metrics", {}).items()]
    if record.get("sun"):
        sections.insert(0, ("S.U.N. (stable, unique, novel)", *metric_table(record["sun"])))
    return sections


def _sun_notes(record: dict[str, Any]) -> list[str]:
    """Where the S.U.N. inputs came from, ambiguities, and metrics whose figures failed."""
    notes = []
    inputs = record.get("sun_inputs") or {}
    if record.get("sun") and inputs:
        notes.append("S.U.N. inputs: " + ", ".join(f"{name} from metric `{metric}`" for name, metric in inputs.items()) + ".")
    notes += [f"S.U.N. warning: {warning}" for warning in record.get("sun_warnings") or []]
    notes += [f"Figures of metric `{metric}` left out: {error}" for metric, error in (record.get("figure_errors") or {}).items()]
    return notes


def _issue_rows(issues: list[dict[str, str]]) -> tuple[list[dict[str, str]], int]:
    return issues[:LISTED_ISSUES], max(0, len(issues) - LISTED_ISSUES)


def render_markdown(record: dict[str, Any], figures: list[Figure], title: str) -> str:
    """report.md: summary, metric tables, figures (``figures/*.png``), skipped inputs, settings."""
    lines = [f"# {title}", "", *_summary_lines(record), ""]
    for name, header, rows in _metric_sections(record):
        lines += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(row) + " |" for row in rows], ""]
    if record.get("detail_errors"):
        lines += ["Details left out: " + "; ".join(f"`{m}`: {e}" for m, e in record["detail_errors"].items()), ""]
    for note in _sun_notes(record):
        lines += [note, ""]
    if figures:
        lines += ["## Figures", ""]
        for figure in figures:
            lines += [f"### {figure.title}", "", f"![{figure.title}](figures/{figure.key}.png)", "", figure.caption, ""]
    elif record.get("figures_note"):
        lines += [f"_{record['figures_note']}_", ""]
    for heading, key in (("Skipped inputs", "skipped"), ("Warnings (evaluated)", "warnings")):
        issues = record.get(key) or []
        if issues:
            shown, more = _issue_rows(issues)
            lines += [f"## {heading}", "", "| item | reason | detail |", "|---|---|---|"]
            lines += [f"| {i['id']} | {i['reason']} | {i['detail'].replace('|', '/')} |" for i in shown]
            if more:
                lines.append(f"| … | {more} more in metrics.json | |")
            lines.append("")
    lines += ["## Settings", "", "```json", json.dumps(json_safe({"settings": record.get("settings"), "metric_settings": record.get("metric_settings")}), indent=1), "```", ""]
    return "\n".join(lines)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1320px; margin: 2em auto; padding: 0 1.5em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.summary { color: #333; margin: 0.3em 0; }
.tables { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #d6d6d6; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f4; }
caption { font-weight: 600; text-align: left; padding-bottom: 0.3em; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
.error { color: #b00020; } .note { color: #666; font-style: italic; }
pre { background: #f6f6f8; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def _html_table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            css = ' class="error"' if cell.startswith(("error", "Error")) or "Error:" in cell else (' class="num"' if index >= numeric_from else "")
            cells.append(f"<td{css}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return f'<figure id="{figure.key}"><img src="data:image/png;base64,{data}" alt="{html.escape(figure.title)}"><figcaption>{html.escape(figure.caption)}</figcaption></figure>'


def _html_page(title: str, body: list[str]) -> str:
    return f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n' + "\n".join(body) + "\n</body></html>\n"


def render_html(record: dict[str, Any], figures: list[Figure], title: str) -> str:
    """report.html: the same content as report.md, self-contained (figures as base64 PNG)."""
    body = [f"<h1>{html.escape(title)}</h1>"] + [f'<p class="summary">{html.escape(line.replace("`", ""))}</p>' for line in _summary_lines(record)]
    body.append("<h2>Metrics</h2>")
    tables = [_html_table(name, header, rows) for name, header, rows in _metric_sections(record)]
    body.append('<div class="tables">' + "".join(tables) + "</div>" if tables else '<p class="note">no metrics were run</p>')
    if record.get("detail_errors"):
        body.append('<p class="error">Details left out: ' + html.escape("; ".join(f"{m}: {e}" for m, e in record["detail_errors"].items())) + "</p>")
    for note in _sun_notes(record):
        body.append(f'<p class="{"note" if note.startswith("S.U.N. inputs") else "error"}">{html.escape(note.replace("`", ""))}</p>')
    body.append("<h2>Figures</h2>")
    if figures:
        body += [f"<h3>{html.escape(f.title)}</h3>{_html_figure(f)}" for f in figures]
    else:
        body.append(f'<p class="note">{html.escape(record.get("figures_note") or "no figures")}</p>')
    for heading, key in (("Skipped inputs", "skipped"), ("Warnings (evaluated)", "warnings")):
        issues = record.get(key) or []
        if issues:
            shown, more = _issue_rows(issues)
            rows = [[i["id"], i["reason"], i["detail"]] for i in shown] + ([["…", f"{more} more in metrics.json", ""]] if more else [])
            body += [f"<h2>{heading}</h2>", _html_table("", ["item", "reason", "detail"], rows, numeric_from=99)]
    settings = json.dumps(json_safe({"settings": record.get("settings"), "generated": record.get("generated", {}).get("settings"), "metric_settings": record.get("metric_settings")}), indent=1)
    body += ["<h2>Settings</h2>", f"<pre>{html.escape(settings)}</pre>"]
    return _html_page(title, body)


def write_report(folder: str | Path, record: dict[str, Any], details: dict, structures: Sequence, ids: Sequence[str], *, title: str = "crystens evaluation", gallery: int = 12, metrics: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write metrics.json, details.npz, figures/*.png, report.md and report.html into ``folder``.

    The report names no metric: besides the structure figures and the gallery it draws
    what each metric that ran contributes through its optional ``figures`` method
    (see :func:`metric_figures`); a metric whose drawing fails is listed under
    ``figure_errors`` in metrics.json.

    Args:
        record: the JSON-able record (see :func:`crystens_core.evaluation.evaluate_generated`).
        details: metric → side → name → per-structure array.
        structures: the generated structures (None for failed items), for the gallery.
        ids: one id per generated item.
        title: the report's heading.
        gallery: how many generated structures to draw (0: none).
        metrics: metric name → the instance that ran (for its ``figures`` method); None: none.

    Returns:
        File role → path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_details(folder / DETAILS_FILE, details, ids)
    record = dict(record)
    drawn: list[Figure] = []
    if have_matplotlib():
        threshold = (record.get("settings") or {}).get("stability_threshold_ev_per_atom", STABILITY_THRESHOLD)
        errors: dict[str, str] = {}
        energy_source = (record.get("sun_inputs") or {}).get("e_above_hull")
        drawn = draw_report_figures(details, record.get("metrics", {}), structures, ids, gallery=gallery, threshold=threshold, metrics=metrics, settings=record.get("settings"), energy_source=energy_source, errors=errors)
        if errors:
            record["figure_errors"] = errors
        (folder / "figures").mkdir(exist_ok=True)
        for figure in drawn:
            write_bytes_atomic(folder / "figures" / f"{figure.key}.png", figure.png)
    else:
        record["figures_note"] = 'figures need matplotlib: pip install "crystens[eval]"'
    record["figures"] = [f"figures/{f.key}.png" for f in drawn]
    paths = {"metrics": folder / METRICS_FILE, "details": folder / DETAILS_FILE, "markdown": folder / "report.md", "html": folder / "report.html"}
    write_json_atomic(paths["metrics"], record)
    write_text_atomic(paths["markdown"], render_markdown(record, drawn, title))
    write_text_atomic(paths["html"], render_html(record, drawn, title))
    return paths


# -- crystens compare ------------------------------------------------------------------------------
def read_run(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """A report folder (or its metrics.json) → ``(folder, record)``.

    Raises:
        ValueError: no readable metrics.json there.
    """
    path = Path(path)
    folder = path.parent if path.name == METRICS_FILE else path
    file = folder / METRICS_FILE
    if not file.is_file():
        raise ValueError(f"{path}: no {METRICS_FILE} (give report folders written by `crystens evaluate` or `crystens run`)")
    record = read_json(file, error=ValueError)
    if not isinstance(record, dict):
        raise ValueError(f"{file}: not a metrics record (a JSON object)")
    return folder, record


def run_labels(folders: Sequence[Path]) -> list[str]:
    """Short unique names: the folder names, with parents added where they clash."""
    parts = [f.resolve().parts for f in folders]
    depth = 1
    while depth < max(len(p) for p in parts):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
        depth += 1
    return ["/".join(p) for p in parts]


def comparison_rows(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, list[Any]]]:
    """``(group, figure, [value per run])`` for every figure any run has (missing → None)."""
    rows: list[tuple[str, str, list[Any]]] = []

    def add(group: str, getter) -> None:
        keys: list[str] = []
        for record in records:
            for key in getter(record) or {}:
                if key not in keys:
                    keys.append(key)
        for key in keys:
            rows.append((group, key, [(getter(record) or {}).get(key) for record in records]))

    add("inputs", lambda r: {k: v for k, v in (r.get("generated") or {}).items() if k in ("items", "structures", "skipped", "warnings")})
    add("S.U.N.", lambda r: r.get("sun"))
    metric_names: list[str] = []
    for record in records:
        for name in record.get("metrics", {}):
            if name not in metric_names:
                metric_names.append(name)
    for name in metric_names:
        add(name, lambda r, name=name: r.get("metrics", {}).get(name))
    return rows


def figure_comparison(labels: Sequence[str], all_details: Sequence[dict | None], names: Sequence[tuple[str, str]], title: str) -> Figure | None:
    """Each run's generated distribution overlaid on the first run's reference, one panel per property."""
    panels = [(metric, name) for metric, name in names if any(d is not None and name in metric_side(d, metric, "generated") for d in all_details)]
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    figure = new_figure(4.5 * columns, 3.5 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axis, (metric, name) in zip(axes, panels):
        reference = next((metric_side(d, metric, "reference").get(name) for d in all_details if d is not None and name in metric_side(d, metric, "reference")), None)
        series = [(label, metric_side(d, metric, "generated").get(name), f"C{i % 10}") for i, (label, d) in enumerate(zip(labels, all_details)) if d is not None and name in metric_side(d, metric, "generated")]
        fixed = (1, 230) if name == "spacegroup" else None
        discrete = name in ("spacegroup", "atomic_number_sites", "n_elements", "n_sites")
        if is_binary(reference, *[values for _, values, _ in series]):
            draw_shares(axis, series, name, reference=reference, title=f"{metric}: {axis_label(name)}")
            continue
        draw_histograms(axis, series, name, reference=reference, discrete=discrete, fixed=fixed, title=axis_label(name) if metric == STRUCTURE_GROUP else f"{metric}: {axis_label(name)}")
    for axis in axes[len(panels) :]:
        axis.set_axis_off()
    figure.suptitle(title)
    key = title.lower().split(" (")[0].replace(" ", "-").replace(",", "")
    return Figure(key, title, f"{title}: each run's generated structures, reference (of the first run that has it) filled grey.", png_bytes(figure))


def _short(text: str, limit: int = 60) -> str:
    """A table cell: long texts (error messages) cut, the whole of them is in each run's metrics.json."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_comparison(runs: Sequence[str | Path], folder: str | Path) -> dict[str, Path]:
    """`crystens compare`: one table of every figure across runs (Markdown, HTML, JSON) and overlaid distributions.

    Raises:
        ValueError: fewer than one run, or a run folder without metrics.json.
    """
    if not runs:
        raise ValueError("give at least one report folder")
    loaded = [read_run(run) for run in runs]
    folders = [f for f, _ in loaded]
    records = [r for _, r in loaded]
    labels = run_labels(folders)
    all_details = [load_details(f / DETAILS_FILE)[0] if (f / DETAILS_FILE).is_file() else None for f in folders]
    rows = comparison_rows(records)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawn: list[Figure] = []
    if have_matplotlib():
        structure_names = [(STRUCTURE_GROUP, n) for n in ("a", "b", "c", "alpha", "beta", "gamma", "spacegroup", "atomic_number_sites", "density", "n_elements")]
        extra: list[tuple[str, str]] = []
        for details in all_details:
            for metric, sides in (details or {}).items():
                if metric == STRUCTURE_GROUP:
                    continue
                for name in sides.get("generated", {}):
                    if name not in PROPERTY_LABELS and (metric, name) not in extra:
                        extra.append((metric, name))
        drawn = [f for f in (figure_comparison(labels, all_details, structure_names, "Structure distributions (paper Figs 4–6)"), figure_comparison(labels, all_details, extra[:12], "Metric details")) if f is not None]
        (folder / "figures").mkdir(exist_ok=True)
        for figure in drawn:
            write_bytes_atomic(folder / "figures" / f"{figure.key}.png", figure.png)
    missing = [label for label, d in zip(labels, all_details) if d is None]
    table = [[group, key, *[_short(format_value(v)) for v in values]] for group, key, values in rows]
    header = ["metric", "figure", *labels]
    md = ["# crystens comparison", "", *[f"- **{label}**: `{folder_}`" for label, folder_ in zip(labels, folders)], ""]
    md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(row) + " |" for row in table], ""]
    if missing:
        md += [f"No details.npz (left out of the plots): {', '.join(missing)}", ""]
    for figure in drawn:
        md += [f"## {figure.title}", "", f"![{figure.title}](figures/{figure.key}.png)", "", figure.caption, ""]
    body = ["<h1>crystens comparison</h1>", "<ul>" + "".join(f"<li><b>{html.escape(l)}</b>: {html.escape(str(f))}</li>" for l, f in zip(labels, folders)) + "</ul>"]
    body.append(_html_table("", header, table, numeric_from=2))
    if missing:
        body.append(f'<p class="note">No details.npz (left out of the plots): {html.escape(", ".join(missing))}</p>')
    body += [f"<h2>{html.escape(f.title)}</h2>{_html_figure(f)}" for f in drawn]
    paths = {"markdown": folder / "compare.md", "html": folder / "compare.html", "json": folder / "compare.json"}
    write_text_atomic(paths["markdown"], "\n".join(md))
    write_text_atomic(paths["html"], _html_page("crystens comparison", body))
    comparison = {"runs": [{"label": l, "folder": str(f)} for l, f in zip(labels, folders)], "rows": [{"group": g, "figure": k, "values": v} for g, k, v in rows], "figures": [f"figures/{f.key}.png" for f in drawn]}
    write_json_atomic(paths["json"], comparison)
    return paths
