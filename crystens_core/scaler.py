"""Per-field, invertible min–max scaling of raw CrysTens tensors for the networks.

Every entry of the tensor belongs to a field (:func:`crystens_core.layout.field_names`:
Z, x, y, z, a, b, c, α, β, γ, space group, distance, dx, dy, dz, and a header and a
pair field per extra channel). The scaler maps each field's fitted range, widened to
include 0 so that the zero padding of an all-positive field stays 0, onto
``feature_range``. Entries that are zero by construction stay zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crystens_core import layout
from crystens_core.safe_io import read_json, write_json_atomic

FORMAT_VERSION = 1
#: Largest tensor side S a scaler record may declare (512 sites); bounds the memory a
#: record read from a file can make crystens allocate (C × S² entries, a few MB here).
MAX_SIZE = layout.SITE_OFFSET + 512
#: Most channels a scaler record may declare (the four base channels and extra layers).
MAX_CHANNELS = 32


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
        """A scaler from :meth:`to_dict`'s record, which is checked first (it comes from a file).

        Raises:
            ValueError: not a scaler record, a tensor size or channel count outside
                ``[SITE_OFFSET + 1, MAX_SIZE]`` / ``[BASE_CHANNELS, MAX_CHANNELS]``, fields
                other than the layout's, or a range that is not two finite numbers, low ≤ high.
        """
        if not isinstance(data, dict) or data.get("format") != "crystens.FieldScaler":
            raise ValueError("not a crystens FieldScaler record (missing format 'crystens.FieldScaler')")
        feature_range = _finite_pair(data.get("feature_range"), "feature_range")
        channels = _bounded_int(data.get("channels"), "channels", layout.BASE_CHANNELS, MAX_CHANNELS)
        size = _bounded_int(data.get("size"), "size", layout.SITE_OFFSET + 1, MAX_SIZE)
        expected = layout.field_names(channels)
        fields = data.get("fields")
        if not isinstance(fields, dict) or list(fields) != expected:
            found = list(fields) if isinstance(fields, dict) else type(fields).__name__
            raise ValueError(f"scaler fields {found} do not match the layout's {expected}")
        ranges = np.array([_finite_pair(fields[name], f"fields.{name}") for name in expected], dtype=np.float64)
        if not (ranges[:, 0] <= ranges[:, 1]).all():
            name = expected[int(np.argmax(ranges[:, 0] > ranges[:, 1]))]
            raise ValueError(f"scaler field {name!r}: low {fields[name][0]} is above high {fields[name][1]}")
        scaler = cls(feature_range)
        scaler.channels_, scaler.size_, scaler.field_names_ = channels, size, expected
        scaler.data_min_, scaler.data_max_ = ranges[:, 0].copy(), ranges[:, 1].copy()
        scaler._build()
        return scaler

    def save(self, path: str | Path) -> None:
        """Write the scaler as JSON (atomically)."""
        write_json_atomic(path, self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str | Path) -> "FieldScaler":
        """Read a scaler written by :meth:`save`."""
        return cls.from_dict(read_json(path, error=ValueError))


def _finite_pair(value: Any, name: str) -> tuple[float, float]:
    """``[low, high]`` of a scaler record as two finite floats (ValueError naming ``name`` otherwise)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"scaler {name} must be two numbers, got {value!r:.80}")
    low, high = float(value[0]), float(value[1])
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"scaler {name} must be finite, got {value!r:.80}")
    return low, high


def _bounded_int(value: Any, name: str, low: int, high: int) -> int:
    """An integer of a scaler record within [low, high] (ValueError naming ``name`` otherwise)."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"scaler {name} must be an integer in [{low}, {high}], got {value!r:.80}")
    return value
