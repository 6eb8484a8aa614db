"""Result types of the architecture zoo: layer tables with parameters and multiply-adds, conv-cost arithmetic."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from visionkit.core.results import Result


def format_shape(shape) -> str:
    """``(112, 112, 64)`` -> ``112x112x64`` (``?`` for an unknown size); several outputs joined by ``, ``."""
    if shape is None:
        return ""
    if shape and isinstance(shape[0], (tuple, list)):
        return ", ".join(format_shape(s) for s in shape)
    return "x".join("?" if d is None else str(d) for d in shape)


@dataclass(frozen=True)
class LayerCost:
    """One layer of a model summary: output shape (no batch axis), parameters, multiply-adds (None: unknown)."""

    name: str
    type: str
    output_shape: tuple | None
    params: int
    macs: int | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelSummary(Result):
    """A layer table with totals; MACs follow the convention in :mod:`visionkit.zoo.cost`."""

    model: str
    input_shape: tuple | None
    layers: tuple[LayerCost, ...]
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    macs_complete: bool = True

    @property
    def source(self) -> str:
        return self.model

    def to_dict(self) -> dict:
        return {
            "model": self.model, "input_shape": self.input_shape, "params": self.params,
            "trainable_params": self.trainable_params, "non_trainable_params": self.non_trainable_params,
            "macs": self.macs, "macs_complete": self.macs_complete,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_rows(self) -> list[dict]:
        rows = [{"name": layer.name, "type": layer.type, "output_shape": format_shape(layer.output_shape),
                 "params": layer.params,
                 "macs": "?" if layer.macs is None else layer.macs} for layer in self.layers]
        rows.append({"name": "total", "type": "", "output_shape": "", "params": self.params,
                     "macs": self.macs if self.macs_complete else f"{self.macs}+?"})
        return rows


@dataclass(frozen=True)
class ConvCost(Result):
    """One convolution: shapes (H, W, C), parameters (weights + biases) and multiplies (= MACs)."""

    label: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    filter_size: int
    stride: int
    padding: str
    filters: int
    params: int
    multiplies: int

    @property
    def source(self) -> str:
        return self.label

    def to_dict(self) -> dict:
        return asdict(self)

    def to_rows(self) -> list[dict]:
        return [{"layer": self.label, "input": format_shape(self.input_shape),
                 "filter": f"{self.filter_size}x{self.filter_size}",
                 "stride": self.stride, "padding": self.padding, "output": format_shape(self.output_shape),
                 "params": self.params, "multiplies": self.multiplies}]


@dataclass(frozen=True)
class BottleneckComparison(Result):
    """An f×f conv on the input (``direct``) vs. a 1×1 ``reduce`` conv followed by the f×f ``conv``."""

    direct: ConvCost
    reduce: ConvCost
    conv: ConvCost

    @property
    def source(self) -> str:
        return self.direct.label

    @property
    def bottleneck_multiplies(self) -> int:
        return self.reduce.multiplies + self.conv.multiplies

    @property
    def ratio(self) -> float:
        """How many times fewer multiplies the bottleneck path needs."""
        return self.direct.multiplies / self.bottleneck_multiplies

    def to_dict(self) -> dict:
        return {"direct": self.direct.to_dict(), "reduce": self.reduce.to_dict(), "conv": self.conv.to_dict(),
                "bottleneck_multiplies": self.bottleneck_multiplies, "ratio": round(self.ratio, 4)}

    def to_rows(self) -> list[dict]:
        rows = self.direct.to_rows() + self.reduce.to_rows() + self.conv.to_rows()
        rows.append({"layer": "bottleneck total", "input": "", "filter": "", "stride": "", "padding": "",
                     "output": format_shape(self.conv.output_shape),
                     "params": self.reduce.params + self.conv.params, "multiplies": self.bottleneck_multiplies})
        return rows
