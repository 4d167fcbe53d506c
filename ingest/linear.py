"""A saved logistic regression, read without scikit-learn.

Why: the decisions the code takes on text (which passage leads an answer, whether to answer,
which candidate a fabrique's card keeps) are small logistic regressions fitted by the
evaluation scripts with scikit-learn and saved as JSON beside the code that uses them. Reading
them back needs only this: the standardised features' means and scales, the weights, the bias
and the threshold chosen on held-out folds. It lives in `ingest/` because the cards, built at
ingest, use it and `ingest/` never imports `assistant/`; the answer layer uses the same class.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

M = TypeVar("M", bound="LinearModel")


@dataclass
class LinearModel:
    """p = σ(bias + Σ wᵢ·(xᵢ − meanᵢ)/scaleᵢ); `threshold` is where a yes starts."""

    features: tuple[str, ...]
    weights: list[float]
    bias: float
    mean: list[float]
    scale: list[float]
    threshold: float = 0.5
    note: str = ""

    def prob(self, x: dict[str, float]) -> float:
        """Every feature must be given: a renamed feature fails loudly rather than count as 0."""
        z = self.bias + sum(w * (x[f] - m) / s for f, w, m, s in
                            zip(self.features, self.weights, self.mean, self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "features": list(self.features)}

    @classmethod
    def from_json(cls: type[M], data: dict[str, Any]) -> M:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known and k != "features"},
                   features=tuple(data["features"]))
