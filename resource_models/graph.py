"""A dataflow graph of ops with the resource figures of its int8 TFLite model."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

from resource_models import schedule
from resource_models.op import Op, op_class
from resource_models.schedule import ScheduleProblem, ScheduleResult
from resource_models.tensor import INT8_BYTES, Tensor, is_int, normalize_shape

logger = logging.getLogger(__name__)

#: Bytes per weight element (int8) and per bias element (int32) in an int8 TFLite model.
WEIGHT_BYTES = 1
BIAS_BYTES = 4

#: Version of the `Graph.to_dict` layout.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class OpNode:
    """One op of a graph with its input tensors and the output tensor it produces."""

    name: str
    op: Op
    inputs: tuple[Tensor, ...]
    output: Tensor

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tensor.shape for tensor in self.inputs)

    def weight_count(self) -> int:
        """Return the weight elements of this op, biases excluded."""
        return self.op.weight_count(self.input_shapes)

    def bias_count(self) -> int:
        """Return the bias elements of this op."""
        return self.op.bias_count(self.input_shapes)

    def macs(self) -> int:
        """Return the multiply-accumulate operations of this op for one inference."""
        return self.op.macs(self.input_shapes, self.output.shape)


class Graph:
    """A network as TFLite runs it: ops on int8 activation tensors, without a batch dimension.

    Ops are added in a topological order (each after the ops it reads from), and every op
    produces one tensor with the op's name. Tensor and op names share one namespace.
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        self._inputs: list[Tensor] = []
        self._outputs: list[Tensor] = []
        self._ops: list[OpNode] = []
        self._tensors: dict[str, Tensor] = {}
        self._peak_cache: dict[bool, ScheduleResult] = {}

    # --- building ------------------------------------------------------------------------

    def add_input(self, shape: Sequence[int], name: Optional[str] = None,
                  element_bytes: int = INT8_BYTES) -> Tensor:
        """Add a graph input of ``shape`` (no batch dimension) and return its tensor."""
        shape = normalize_shape(shape, f"Input shape of graph {self.name!r}")
        if not is_int(element_bytes) or element_bytes < 1:
            raise ValueError(f"element_bytes must be a positive int, got {element_bytes!r}.")
        tensor = Tensor(self._new_name(name, "input"), shape, int(element_bytes))
        self._register(tensor)
        self._inputs.append(tensor)
        return tensor

    def add(self, op: Op, *inputs: Tensor, name: Optional[str] = None) -> Tensor:
        """Append ``op`` reading ``inputs`` and return its output tensor.

        Raises ValueError if the input shapes do not fit the op; the message names the op.
        """
        if not isinstance(op, Op):
            raise TypeError(f"Graph.add expects an Op such as ops.Conv2D(...), got {op!r}.")
        for tensor in inputs:
            self._check_own_tensor(tensor)
        name = self._new_name(name, op.type_name.lower())

        input_shapes = tuple(tensor.shape for tensor in inputs)
        try:
            op.check_input_count(len(inputs))
            output_shape = op.output_shape(input_shapes)
        except ValueError as error:
            raise ValueError(f"Op {name!r} in graph {self.name!r}: {error}") from error

        element_bytes = op.output_element_bytes([tensor.element_bytes for tensor in inputs])
        output = Tensor(name, tuple(output_shape), element_bytes)
        self._register(output)
        self._ops.append(OpNode(name, op, tuple(inputs), output))
        return output

    def mark_output(self, *tensors: Tensor) -> None:
        """Mark tensors as graph outputs, which stay live until the end of a schedule."""
        for tensor in tensors:
            self._check_own_tensor(tensor)
            if tensor not in self._outputs:
                self._outputs.append(tensor)
        self._peak_cache.clear()

    # --- inspection ----------------------------------------------------------------------

    @property
    def inputs(self) -> list[Tensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[Tensor]:
        return list(self._outputs)

    @property
    def ops(self) -> list[OpNode]:
        """Op nodes in insertion order, which is a topological order."""
        return list(self._ops)

    def tensor(self, name: str) -> Tensor:
        """Return the tensor called ``name``, or raise KeyError."""
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"Graph {self.name!r} has no tensor {name!r}.") from None

    # --- resource figures ----------------------------------------------------------------

    def weight_count(self) -> int:
        """Return all weight elements, biases included."""
        return sum(node.weight_count() + node.bias_count() for node in self._ops)

    def bias_count(self) -> int:
        """Return the bias elements alone."""
        return sum(node.bias_count() for node in self._ops)

    def model_size_bytes(self) -> int:
        """Return the bytes of the weights: int8 weights (1 byte) and int32 biases (4 bytes).

        NOTE: a ``.tflite`` file also contains quantisation parameters, the graph structure and
        flatbuffer padding, which this figure leaves out.
        """
        biases = self.bias_count()
        return (self.weight_count() - biases) * WEIGHT_BYTES + biases * BIAS_BYTES

    def macs(self) -> int:
        """Return the multiply-accumulate operations of one inference."""
        return sum(node.macs() for node in self._ops)

    def peak_memory(self, add_reuses_input: bool = False) -> ScheduleResult:
        """Return the minimum peak memory usage over all valid op orders, and such an order.

        See `resource_models.schedule` for the memory model and ``add_reuses_input``. Mark
        the graph outputs first: a tensor that nothing reads and that is not an output
        counts only while its op runs. The result is cached until the graph changes.
        """
        key = bool(add_reuses_input)
        if key not in self._peak_cache:
            self._peak_cache[key] = schedule.minimum_peak_memory(self._schedule_problem(), key)
        return self._peak_cache[key]

    def schedule_memory(self, order: Sequence[str],
                        add_reuses_input: bool = False) -> ScheduleResult:
        """Return the working sets of running the ops in ``order`` (a list of op names)."""
        return schedule.schedule_memory(self._schedule_problem(), order, bool(add_reuses_input))

    # --- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Return the graph as JSON-compatible data that `from_dict` rebuilds."""
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "inputs": [{"name": tensor.name, "shape": list(tensor.shape),
                        "element_bytes": tensor.element_bytes} for tensor in self._inputs],
            "ops": [{"name": node.name, "type": node.op.type_name,
                     "config": node.op.get_config(),
                     "inputs": [tensor.name for tensor in node.inputs]} for node in self._ops],
            "outputs": [tensor.name for tensor in self._outputs],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Graph":
        """Rebuild a graph from `to_dict` output; raise ValueError if it is malformed."""
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            found = data.get("format_version") if isinstance(data, dict) else data
            raise ValueError(f"Expected a graph dict with format_version {FORMAT_VERSION} from "
                             f"Graph.to_dict, got format_version {found!r}.")
        try:
            graph = cls(name=data["name"])
            for entry in data["inputs"]:
                graph.add_input(entry["shape"], name=entry["name"],
                                element_bytes=entry.get("element_bytes", INT8_BYTES))
            for entry in data["ops"]:
                op_type = op_class(entry["type"])
                try:
                    op = op_type.from_config(entry["config"])
                except TypeError as error:
                    raise ValueError(f"Invalid config for op {entry['name']!r} of type "
                                     f"{entry['type']!r}: {error}") from error
                inputs = [graph.tensor(name) for name in entry["inputs"]]
                graph.add(op, *inputs, name=entry["name"])
            graph.mark_output(*(graph.tensor(name) for name in data["outputs"]))
        except KeyError as error:
            raise ValueError(f"Graph dict is missing or names an unknown entry: {error}") \
                from error
        return graph

    # --- helpers -------------------------------------------------------------------------

    def _new_name(self, name: Optional[str], prefix: str) -> str:
        if name is None:
            name = prefix
            suffix = 1
            while name in self._tensors:
                name = f"{prefix}_{suffix}"
                suffix += 1
            return name
        if not isinstance(name, str) or not name:
            raise ValueError(f"Tensor and op names must be non-empty strings, got {name!r}.")
        if name in self._tensors:
            raise ValueError(f"Name {name!r} is already used in graph {self.name!r}; tensor and "
                             "op names must be unique.")
        return name

    def _register(self, tensor: Tensor) -> None:
        self._tensors[tensor.name] = tensor
        self._peak_cache.clear()

    def _check_own_tensor(self, tensor: Tensor) -> None:
        if not isinstance(tensor, Tensor) or self._tensors.get(tensor.name) is not tensor:
            raise ValueError(f"{tensor!r} is not a tensor of graph {self.name!r}; pass tensors "
                             "returned by this graph's add_input or add.")

    def _schedule_problem(self) -> ScheduleProblem:
        index = {name: position for position, name in enumerate(self._tensors)}
        outputs = {tensor.name for tensor in self._outputs}
        tensors = list(self._tensors.values())
        return ScheduleProblem(
            op_names=tuple(node.name for node in self._ops),
            op_inputs=tuple(tuple(dict.fromkeys(index[t.name] for t in node.inputs))
                            for node in self._ops),
            op_outputs=tuple((index[node.output.name],) for node in self._ops),
            op_may_reuse_input=tuple(node.op.may_reuse_input_buffer for node in self._ops),
            tensor_bytes=tuple(tensor.size_bytes for tensor in tensors),
            tensor_is_output=tuple(tensor.name in outputs for tensor in tensors),
        )

    def __repr__(self) -> str:
        return (f"Graph(name={self.name!r}, inputs={len(self._inputs)}, ops={len(self._ops)}, "
                f"outputs={len(self._outputs)})")
