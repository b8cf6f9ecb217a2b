"""A latency model fitted to latencies measured on a microcontroller.

The model predicts the latency of one inference as a sum over the graph's ops::

    seconds = sum over ops of (seconds_per_op[kind] + seconds_per_mac[kind] * MACs)

with one pair of coefficients per op kind (Conv2D, DepthwiseConv2D, Dense, Pool2D, ...).
`LatencyModel.fit` finds them by least squares (`numpy.linalg.lstsq`) from whole-model
latencies. `LatencyModel.fit_csv` reads the latencies from a CSV with the columns ``file``
(a .tflite path, relative to the CSV's folder) and ``latency_ms``, such as the
``models.csv`` that ``generate_tflite_models.py`` writes.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from resource_models import Graph, OpNode

logger = logging.getLogger(__name__)

#: Version of the JSON layout that `LatencyModel.save` writes.
FORMAT_VERSION = 1

#: Op kind of the TFLite operator types that the .tflite reader keeps as generic ops.
_OPERATOR_KINDS = {
    "CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D", "MAX_POOL_2D": "Pool2D",
    "AVERAGE_POOL_2D": "Pool2D", "MEAN": "GlobalPool2D", "REDUCE_MAX": "GlobalPool2D",
    "FULLY_CONNECTED": "Dense", "ADD": "Add", "PAD": "Pad", "PADV2": "Pad",
    "RESHAPE": "Reshape", "SOFTMAX": "Softmax",
}


def op_kind(node: OpNode) -> str:
    """Return the kind that selects an op's coefficients, such as ``"Conv2D"``.

    Ops read from a .tflite file and ops built by a search space get the same kind.
    """
    operator_type = getattr(node.op, "operator_type", None)
    if operator_type is not None:
        return _OPERATOR_KINDS.get(operator_type, operator_type)
    return node.op.type_name


def _features(graph: Graph, kinds: Sequence[str]) -> np.ndarray:
    """Return per kind the op count and the MACs, as one row of the design matrix."""
    row = np.zeros(2 * len(kinds))
    index = {kind: position for position, kind in enumerate(kinds)}
    for node in graph.ops:
        position = index.get(op_kind(node))
        if position is not None:
            row[2 * position] += 1
            row[2 * position + 1] += node.macs()
    return row


@dataclass
class LatencyModel:
    """Coefficients of the latency model and how well they fit.

    Attributes:
        seconds_per_op: fixed cost of one op of each kind, in seconds.
        seconds_per_mac: cost of one multiply-accumulate in an op of each kind, in seconds.
        fit_summary: models used, root-mean-square error and mean latency of the fit.
    """

    seconds_per_op: dict[str, float]
    seconds_per_mac: dict[str, float]
    fit_summary: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, graphs: Sequence[Graph], latencies_seconds: Sequence[float]) -> "LatencyModel":
        """Fit the coefficients to measured whole-model latencies by least squares.

        With fewer models than coefficients the solution is the minimum-norm one, which
        fits the data but generalises poorly, and a warning is logged.
        """
        latencies = np.asarray(latencies_seconds, dtype=float)
        if len(graphs) != len(latencies) or len(graphs) == 0:
            raise ValueError(f"Expected one latency per graph and at least one graph, got "
                             f"{len(graphs)} graphs and {len(latencies)} latencies.")
        if not np.all(np.isfinite(latencies)) or np.any(latencies <= 0):
            raise ValueError("Latencies must be positive, finite numbers of seconds, got "
                             f"{latencies.tolist()}.")

        kinds = sorted({op_kind(node) for graph in graphs for node in graph.ops})
        design = np.stack([_features(graph, kinds) for graph in graphs])
        if len(graphs) < design.shape[1]:
            logger.warning("Fitting %d coefficients to %d latencies: the fit is "
                           "underdetermined; measure more models.", design.shape[1],
                           len(graphs))

        # Counts and MACs differ by orders of magnitude, so each column is scaled to a
        # largest value of 1 before solving.
        scale = np.abs(design).max(axis=0)
        scale[scale == 0] = 1.0
        solution, *_ = np.linalg.lstsq(design / scale, latencies, rcond=None)
        solution = solution / scale

        residuals = design @ solution - latencies
        summary = {"models": len(graphs),
                   "rmse_ms": float(np.sqrt(np.mean(residuals ** 2)) * 1e3),
                   "mean_latency_ms": float(latencies.mean() * 1e3)}
        model = cls({kind: float(solution[2 * i]) for i, kind in enumerate(kinds)},
                    {kind: float(solution[2 * i + 1]) for i, kind in enumerate(kinds)}, summary)

        negative = [kind for kind in kinds
                    if model.seconds_per_op[kind] < 0 or model.seconds_per_mac[kind] < 0]
        if negative:
            logger.warning("Negative latency coefficients for %s: these op kinds vary too "
                           "little in the measured models to separate their costs.",
                           ", ".join(negative))
        logger.info("Fitted a latency model to %d models: RMSE %.3f ms, mean latency %.3f ms.",
                    summary["models"], summary["rmse_ms"], summary["mean_latency_ms"])
        return model

    @classmethod
    def fit_csv(cls, csv_path: Union[str, Path]) -> "LatencyModel":
        """Fit to a CSV with the columns ``file`` and ``latency_ms`` (see the module doc)."""
        from resource_models.tflite_reader import read_tflite

        csv_path = Path(csv_path)
        with csv_path.open(newline="") as file:
            reader = csv.DictReader(file)
            missing = {"file", "latency_ms"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{csv_path} lacks the column(s) {sorted(missing)}; expected "
                                 "a header with 'file' and 'latency_ms'.")
            rows = [row for row in reader if row["latency_ms"].strip()]
        if not rows:
            raise ValueError(f"{csv_path} has no row with a latency_ms value; add the "
                             "measured latencies first.")

        graphs, latencies = [], []
        for row in rows:
            model_path = csv_path.parent / row["file"]
            try:
                latency_ms = float(row["latency_ms"])
            except ValueError:
                raise ValueError(f"Invalid latency_ms {row['latency_ms']!r} for "
                                 f"{row['file']!r} in {csv_path}; expected milliseconds "
                                 "such as 12.5.") from None
            graphs.append(read_tflite(model_path).graph)
            latencies.append(latency_ms / 1e3)
        return cls.fit(graphs, latencies)

    def predict_seconds(self, graph: Graph) -> float:
        """Return the predicted latency of one inference of ``graph``, in seconds.

        Op kinds absent from the fit add nothing; a warning names them.
        """
        seconds = 0.0
        unknown = set()
        for node in graph.ops:
            kind = op_kind(node)
            if kind not in self.seconds_per_op:
                unknown.add(kind)
                continue
            seconds += self.seconds_per_op[kind] + self.seconds_per_mac[kind] * node.macs()
        if unknown:
            logger.warning("The latency model has no coefficients for %s; they add 0 s to "
                           "the prediction for %s.", ", ".join(sorted(unknown)), graph.name)
        return seconds

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION,
                "coefficients": {kind: {"seconds_per_op": self.seconds_per_op[kind],
                                        "seconds_per_mac": self.seconds_per_mac[kind]}
                                 for kind in sorted(self.seconds_per_op)},
                "fit": self.fit_summary}

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyModel":
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            found = data.get("format_version") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"Expected a latency model with format_version {FORMAT_VERSION}, "
                             f"got {found!r}; refit it with LatencyModel.fit_csv.")
        coefficients = data["coefficients"]
        for kind, values in coefficients.items():
            if not all(isinstance(values.get(key), (int, float)) and math.isfinite(values[key])
                       for key in ("seconds_per_op", "seconds_per_mac")):
                raise ValueError(f"Invalid coefficients for {kind!r}: {values!r}; expected "
                                 "finite numbers seconds_per_op and seconds_per_mac.")
        return cls({kind: float(values["seconds_per_op"]) for kind, values in coefficients.items()},
                   {kind: float(values["seconds_per_mac"])
                    for kind, values in coefficients.items()},
                   dict(data.get("fit", {})))

    def save(self, path: Union[str, Path]) -> None:
        """Write the model as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "LatencyModel":
        """Read a model that `save` wrote."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"Latency model {path} is not valid JSON: {error}") from error
        return cls.from_dict(data)
