"""Per-field, invertible min–max scaling of raw CrysTens tensors for the networks.

Every entry of the tensor belongs to a field (:func:`crystens_core.layout.field_names`:
Z, x, y, z, a, b, c, α, β, γ, space group, distance, dx, dy, dz, and a header and a
pair field per extra channel). The scaler maps each field's fitted range, widened to
include 0 so that the zero padding of an all-positive field stays 0, onto
``feature_range``. Entries that are zero by construction stay zero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from crystens_core import layout

FORMAT_VERSION = 1


class FieldScaler:
    """Affine map, one per field, between raw (physical) and scaled tensors.

    Args:
        feature_range: the scaled interval, (0, 1) for sigmoid outputs, (−1, 1) for diffusion.
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        low, high = (float(v) for v in feature_range)
        if not high > low:
            raise ValueError(f"feature_range must be increasing, got {feature_range!r}")
        self.feature_range = (low, high)

    # -- fitting -------------------------------------------------------------------
    def fit(self, tensors: np.ndarray, *, batch_size: int = 512) -> "FieldScaler":
        """Find each field's range over (N, C, S, S) raw tensors (a memory map is fine)."""
        if tensors.ndim != 4 or tensors.shape[0] == 0:
            raise ValueError(f"fit needs a non-empty (N, C, S, S) array, got shape {tensors.shape}")
        _, channels, size, _ = tensors.shape
        fields = layout.field_index_map(channels, size)
        names = layout.field_names(channels)
        low = np.zeros(len(names))
        high = np.zeros(len(names))
        flat = fields.ravel()
        selected = flat >= 0
        for start in range(0, tensors.shape[0], batch_size):
            chunk = np.asarray(tensors[start : start + batch_size], dtype=np.float64).reshape(-1, flat.size)[:, selected]
            if not np.isfinite(chunk).all():
                raise ValueError(f"tensors {start}–{start + len(chunk) - 1} hold NaN or infinite values; cannot fit a scaler")
            field_of = flat[selected]
            np.minimum.at(low, field_of, chunk.min(axis=0))
            np.maximum.at(high, field_of, chunk.max(axis=0))
        self.field_names_ = names
        self.data_min_ = low
        self.data_max_ = high
        self.channels_ = channels
        self.size_ = size
        self._build()
        return self

    def _build(self) -> None:
        span = self.data_max_ - self.data_min_
        span[span == 0] = 1.0  # a constant field maps to feature_range[0]
        low, high = self.feature_range
        fields = layout.field_index_map(self.channels_, self.size_)
        # scaled = raw * multiplier + offset, per entry; zero-by-construction entries stay 0.
        multiplier = (high - low) / span
        offset = low - self.data_min_ * multiplier
        valid = fields >= 0
        self._multiplier = np.where(valid, multiplier[np.maximum(fields, 0)], 1.0)
        self._offset = np.where(valid, offset[np.maximum(fields, 0)], 0.0)

    def _check(self, array: np.ndarray) -> np.ndarray:
        if not hasattr(self, "_multiplier"):
            raise RuntimeError("this FieldScaler is not fitted; call fit() or load() first")
        array = np.asarray(array)
        if array.shape[-3:] != self._multiplier.shape:
            raise ValueError(f"tensor shape {array.shape[-3:]} does not match the scaler's {self._multiplier.shape}")
        return array

    # -- transforms ----------------------------------------------------------------
    def scale(self, raw: np.ndarray) -> np.ndarray:
        """Raw (…, C, S, S) tensors in physical units → scaled, float32."""
        raw = self._check(raw)
        return (raw.astype(np.float64) * self._multiplier + self._offset).astype(np.float32)

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled (…, C, S, S) tensors → raw physical units, float32."""
        scaled = self._check(scaled)
        return ((scaled.astype(np.float64) - self._offset) / self._multiplier).astype(np.float32)

    # -- persistence ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        if not hasattr(self, "data_min_"):
            raise RuntimeError("this FieldScaler is not fitted")
        return {
            "format": "crystens.FieldScaler",
            "version": FORMAT_VERSION,
            "feature_range": list(self.feature_range),
            "channels": self.channels_,
            "size": self.size_,
            "fields": {name: [float(lo), float(hi)] for name, lo, hi in zip(self.field_names_, self.data_min_, self.data_max_)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FieldScaler":
        if data.get("format") != "crystens.FieldScaler":
            raise ValueError("not a crystens FieldScaler record (missing format 'crystens.FieldScaler')")
        scaler = cls(tuple(data["feature_range"]))
        scaler.channels_ = int(data["channels"])
        scaler.size_ = int(data["size"])
        expected = layout.field_names(scaler.channels_)
        if list(data["fields"]) != expected:
            raise ValueError(f"scaler fields {list(data['fields'])} do not match the layout's {expected}")
        scaler.field_names_ = expected
        scaler.data_min_ = np.array([data["fields"][n][0] for n in expected], dtype=np.float64)
        scaler.data_max_ = np.array([data["fields"][n][1] for n in expected], dtype=np.float64)
        scaler._build()
        return scaler

    def save(self, path: str | Path) -> None:
        """Write the scaler as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "FieldScaler":
        """Read a scaler written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))
