"""Tables 1 and 2 of the CrysTens paper, aggregated over a set of raw tensors.

For every tensor the decoder reports the variances of the repeated copies
(lattice lengths in Å², angles in degrees², space group, fractional coordinates,
atomic numbers), ΔCoordinate/atom (fractional) and ΣPairwise/atom (channel-0
units, Å by default), computed on the tensor before any averaging is written
back (the paper's Tables 1–2). This metric averages each figure over the tensors that have
one, and reports the share of tensors that decode to a structure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crystens_core.results import CONSISTENCY_FIGURES


class SelfConsistencyMetric:
    """Mean self-consistency figures of generated raw tensors (lower is better).

    Args:
        decoder: name of the decoder that reconstructs the structures ("auto" or
            "paper"; the variances do not depend on it, ΣPairwise/atom does).
        decoder_config: keyword arguments for that decoder.
    """

    requires = frozenset({"tensors"})

    def __init__(self, decoder: str = "auto", decoder_config: dict[str, Any] | None = None):
        self.decoder = decoder
        self.decoder_config = dict(decoder_config or {})

    def get_config(self) -> dict[str, Any]:
        return {"decoder": self.decoder, "decoder_config": dict(self.decoder_config)}

    def compute(self, *, tensors: np.ndarray, structures=None, reference=None, progress: bool = False) -> dict[str, float]:
        """Figures over (N, C, S, S) raw tensors.

        Returns:
            ``{figure: mean}`` for every figure of :data:`CONSISTENCY_FIGURES` (NaN when no
            tensor had one) with ``n_used_<figure>``, the tensors that had it; ``decoded_fraction``
            over all ``n_tensors`` (also ``n_used``).
        """
        from crystens_core.plugins import get_decoder

        results = get_decoder(self.decoder, **self.decoder_config).decode_batch(tensors, progress=progress)
        values: dict[str, float] = {}
        for figure in CONSISTENCY_FIGURES:
            present = [r.consistency[figure] for r in results if figure in r.consistency]
            values[figure] = float(np.mean(present)) if present else float("nan")
            values[f"n_used_{figure}"] = float(len(present))
        values["n_tensors"] = float(len(results))
        values["n_used"] = float(len(results))
        values["decoded_fraction"] = float(np.mean([r.ok for r in results])) if results else float("nan")
        return values
