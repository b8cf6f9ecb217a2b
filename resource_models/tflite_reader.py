"""Build a resource `Graph` from a ``.tflite`` file, one graph op per TFLite operator.

Each operator becomes the matching op of `resource_models.ops` when that op reproduces the
operator's output shape and element size (int8 convolutions, pooling, dense layers, ADD,
PAD, RESHAPE, SOFTMAX). Any other operator becomes a `TfliteOperator`, which carries the
shapes, weights and MACs read from the file. Operator types the reader has no MAC formula
for are counted with 0 MACs and reported in `TfliteGraph.unsupported_types`.

Shapes in the graph have no batch dimension: a leading dimension of 1 is dropped from
tensors of rank 2 or more. Constant tensors (weights, biases, axes, shapes) are not
activations and take no part in the peak memory usage.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from deployment import flatbuffer
from resource_models import ops
from resource_models.graph import Graph
from resource_models.op import Op, Shape
from resource_models.tensor import Tensor

logger = logging.getLogger(__name__)

_PADDINGS = {0: "same", 1: "valid"}
_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6", 4: "tanh"}

#: Bytes per element of the TFLite tensor types an activation may have.
_ELEMENT_BYTES = {"INT8": 1, "UINT8": 1, "BOOL": 1, "INT16": 2, "UINT16": 2, "FLOAT16": 2,
                  "BFLOAT16": 2, "INT32": 4, "UINT32": 4, "FLOAT32": 4, "INT64": 8,
                  "UINT64": 8, "FLOAT64": 8, "COMPLEX64": 8, "COMPLEX128": 16}

#: Operators whose work is data movement or element-wise arithmetic. They count 0 MACs, as
#: pooling, Add and Softmax do in `resource_models.ops`, without a warning.
ZERO_MAC_TYPES = frozenset({
    "ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "ABS", "NEG",
    "QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE",
    "CONCATENATION", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "SLICE", "STRIDED_SLICE", "SHAPE",
    "GATHER", "PAD", "PADV2", "MIRROR_PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D",
    "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "SOFTMAX", "LOG_SOFTMAX", "LOGISTIC", "TANH",
    "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "PRELU", "HARD_SWISH", "ELU", "EXP",
    "RSQRT", "SQRT", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH", "ARG_MAX", "ARG_MIN", "CAST", "ZEROS_LIKE", "FILL", "BROADCAST_TO",
})

_WEIGHTED_TYPES = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                             "TRANSPOSE_CONV"})


@dataclass(frozen=True)
class TfliteOperator(Op):
    """A TFLite operator described by the figures read from the file.

    The reader uses it for operators that no op of `resource_models.ops` reproduces. Its
    output shape and element size are fixed, so `output_shape` ignores the input shapes.
    """

    operator_type: str
    shape: tuple[int, ...] = ()
    element_bytes: int = 1
    weights: int = 0
    biases: int = 0
    mac_count: int = 0

    min_inputs = 0
    max_inputs = None

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        return tuple(self.shape)

    def weight_count(self, input_shapes: Sequence[Shape]) -> int:
        return self.weights

    def bias_count(self, input_shapes: Sequence[Shape]) -> int:
        return self.biases

    def macs(self, input_shapes: Sequence[Shape], output_shape: Shape) -> int:
        return self.mac_count

    def output_element_bytes(self, input_element_bytes: Sequence[int]) -> int:
        return self.element_bytes


@dataclass
class TfliteGraph:
    """A resource graph read from a ``.tflite`` file, with the link back to the file.

    Attributes:
        graph: one op per operator, added in file order.
        op_names: graph op name of each operator, by operator index.
        operator_types: TFLite type of each operator, such as ``"CONV_2D"``.
        tensor_names: graph tensor name of each activation tensor, by TFLite tensor index.
        unsupported_types: operator types counted with 0 MACs for lack of a formula.
        constant_bytes: constant data of the subgraph (see `deployment.flatbuffer`).
        file_bytes: size of the ``.tflite`` file.
    """

    graph: Graph
    op_names: list[str]
    operator_types: list[str]
    tensor_names: dict[int, str]
    unsupported_types: list[str] = field(default_factory=list)
    constant_bytes: Optional[flatbuffer.ConstantBytes] = None
    file_bytes: int = 0

    @property
    def file_order(self) -> list[str]:
        """Op names in the order the file lists the operators (TFLM runs them so)."""
        return list(self.op_names)

    def operator_index(self, op_name: str) -> int:
        """Return the operator index of the graph op called ``op_name``."""
        try:
            return self.op_names.index(op_name)
        except ValueError:
            raise KeyError(f"Graph {self.graph.name!r} has no op {op_name!r}.") from None


def read_tflite(source: Union[bytes, str, Path], subgraph_index: int = 0,
                name: Optional[str] = None) -> TfliteGraph:
    """Read one subgraph of a ``.tflite`` file (bytes or a path) into a `TfliteGraph`."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"TFLite file {str(path)!r} not found; pass the path of a "
                                    ".tflite file.")
        data = path.read_bytes()
        name = name or path.stem
    else:
        data = bytes(source)
    model = flatbuffer.read_model(data)

    subgraphs = model.subgraphs or []
    if not 0 <= subgraph_index < len(subgraphs):
        raise ValueError(f"Invalid subgraph index {subgraph_index}: the model has "
                         f"{len(subgraphs)} subgraph(s).")
    if len(subgraphs) > 1:
        # NOTE: control-flow operators (IF, WHILE, CALL_ONCE) run other subgraphs, whose
        # tensors this graph does not count.
        logger.warning("The model has %d subgraphs; only subgraph %d is read.",
                       len(subgraphs), subgraph_index)

    reader = _Reader(model, subgraph_index, name or "tflite_model")
    result = reader.read()
    result.constant_bytes = flatbuffer.constant_bytes(model, subgraph_index)
    result.file_bytes = len(data)
    return result


class _Reader:
    def __init__(self, model, subgraph_index: int, name: str):
        self.model = model
        self.subgraph = model.subgraphs[subgraph_index]
        self.tensors = self.subgraph.tensors or []
        self.graph = Graph(name=name)
        self.graph_tensors: dict[int, Tensor] = {}
        self.unsupported: list[str] = []

    # --- tensors -------------------------------------------------------------------------

    def shape(self, index: int) -> tuple[int, ...]:
        """Return a tensor's shape without a batch dimension of 1."""
        shape = tuple(_indices(self.tensors[index].shape))
        if len(shape) >= 2 and shape[0] == 1:
            shape = shape[1:]
        return shape

    def element_bytes(self, index: int) -> int:
        type_name = flatbuffer.tensor_type_name(self.tensors[index])
        if type_name not in _ELEMENT_BYTES:
            raise ValueError(f"Tensor {index} ({flatbuffer.tensor_name(self.tensors[index])!r}) "
                             f"has the type {type_name}, which the reader cannot size.")
        return _ELEMENT_BYTES[type_name]

    def is_constant(self, index: int) -> bool:
        return flatbuffer.is_constant(self.model, self.tensors[index])

    def constant_values(self, index: int) -> np.ndarray:
        tensor = self.tensors[index]
        dtype = {"INT32": np.int32, "INT64": np.int64}.get(flatbuffer.tensor_type_name(tensor))
        if dtype is None:
            raise ValueError(f"Expected an int32 or int64 constant in tensor {index}.")
        data = bytes(bytearray(self.model.buffers[tensor.buffer].data))
        return np.frombuffer(data, dtype=dtype).reshape(tuple(tensor.shape))

    def element_count(self, index: int) -> int:
        return math.prod(_indices(self.tensors[index].shape))

    # --- operators -----------------------------------------------------------------------

    def read(self) -> TfliteGraph:
        for input_number, index in enumerate(_indices(self.subgraph.inputs)):
            self.graph_tensors[index] = self.graph.add_input(
                self.shape(index) or (1,), name=f"input{input_number}",
                element_bytes=self.element_bytes(index))

        op_names, operator_types = [], []
        for position, operator in enumerate(self.subgraph.operators or []):
            operator_type = flatbuffer.operator_type_name(self.model, operator)
            op_name = f"op{position}_{operator_type.lower().replace(':', '_')}"
            self.add_operator(operator, operator_type, op_name)
            op_names.append(op_name)
            operator_types.append(operator_type)

        outputs = [self.graph_tensors[index] for index in _indices(self.subgraph.outputs)
                   if index in self.graph_tensors]
        self.graph.mark_output(*outputs)

        if self.unsupported:
            logger.warning("Counted %s with 0 MACs: the reader has no MAC formula for them.",
                           ", ".join(sorted(set(self.unsupported))))
        tensor_names = {index: tensor.name for index, tensor in self.graph_tensors.items()}
        return TfliteGraph(self.graph, op_names, operator_types, tensor_names,
                           sorted(set(self.unsupported)))

    def add_operator(self, operator, operator_type: str, op_name: str) -> None:
        inputs = [index for index in _indices(operator.inputs) if index >= 0]
        outputs = [index for index in _indices(operator.outputs) if index >= 0]
        activation_inputs = []
        for index in dict.fromkeys(inputs):
            if index in self.graph_tensors:
                activation_inputs.append(self.graph_tensors[index])
            elif not self.is_constant(index):
                # Variable tensors keep state between inferences; TFLM keeps them in the
                # persistent part of the arena, outside the planned activations.
                logger.warning("Tensor %d read by %s is neither constant nor produced by an "
                               "operator; it is left out of the peak memory usage.",
                               index, op_name)

        if len(outputs) != 1:
            # NOTE: the graph has one output per op, so the outputs of SPLIT and similar
            # operators form one tensor that lives until its last consumer.
            shape = (sum(self.element_count(index) for index in outputs),)
            op = TfliteOperator(operator_type, shape, self.element_bytes(outputs[0]),
                                mac_count=0)
            self.note_unsupported(operator_type)
            output = self.graph.add(op, *activation_inputs, name=op_name)
            for index in outputs:
                self.graph_tensors[index] = output
            return

        (output_index,) = outputs
        op = self.library_op(operator, operator_type, inputs, output_index, activation_inputs)
        if op is None:
            op = self.generic_op(operator_type, inputs, output_index)
        self.graph_tensors[output_index] = self.graph.add(op, *activation_inputs, name=op_name)

    def note_unsupported(self, operator_type: str) -> None:
        if operator_type not in ZERO_MAC_TYPES and operator_type not in _WEIGHTED_TYPES:
            self.unsupported.append(operator_type)

    def library_op(self, operator, operator_type: str, inputs: list[int], output_index: int,
                   activation_inputs: list[Tensor]) -> Optional[Op]:
        """Return the `resource_models.ops` op for the operator if one reproduces it."""
        if self.element_bytes(output_index) != 1 or \
                any(tensor.element_bytes != 1 for tensor in activation_inputs):
            return None
        try:
            op = self._library_op(operator, operator_type, inputs)
        except (ValueError, TypeError, IndexError) as error:
            logger.debug("No library op for %s: %s", operator_type, error)
            return None
        if op is None:
            return None

        try:
            op.check_input_count(len(activation_inputs))
            shape = op.output_shape([tensor.shape for tensor in activation_inputs])
        except ValueError:
            return None
        return op if tuple(shape) == self.shape(output_index) else None

    def _library_op(self, operator, operator_type: str, inputs: list[int]) -> Optional[Op]:
        options = operator.builtinOptions
        raw_inputs = _indices(operator.inputs)
        has_bias = len(raw_inputs) > 2 and raw_inputs[2] >= 0

        if operator_type == "CONV_2D":
            if (options.dilationHFactor, options.dilationWFactor) != (1, 1):
                return None
            filters, kernel_height, kernel_width, _ = self.tensors[raw_inputs[1]].shape
            return ops.Conv2D(filters=int(filters),
                              kernel_size=(int(kernel_height), int(kernel_width)),
                              strides=(options.strideH, options.strideW),
                              padding=_PADDINGS[options.padding], use_bias=has_bias,
                              activation=_ACTIVATIONS.get(options.fusedActivationFunction))
        if operator_type == "DEPTHWISE_CONV_2D":
            if (options.dilationHFactor, options.dilationWFactor) != (1, 1):
                return None
            _, kernel_height, kernel_width, output_channels = self.tensors[raw_inputs[1]].shape
            input_channels = int(self.tensors[raw_inputs[0]].shape[-1])
            return ops.DepthwiseConv2D(
                kernel_size=(int(kernel_height), int(kernel_width)),
                strides=(options.strideH, options.strideW), padding=_PADDINGS[options.padding],
                depth_multiplier=int(output_channels) // input_channels, use_bias=has_bias,
                activation=_ACTIVATIONS.get(options.fusedActivationFunction))
        if operator_type in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            return ops.Pool2D(kind="max" if operator_type == "MAX_POOL_2D" else "avg",
                              pool_size=(options.filterHeight, options.filterWidth),
                              strides=(options.strideH, options.strideW),
                              padding=_PADDINGS[options.padding])
        if operator_type in ("MEAN", "REDUCE_MAX"):
            axes = sorted(int(axis) % 4 for axis in self.constant_values(raw_inputs[1]).ravel())
            if axes != [1, 2] or options.keepDims:
                return None
            return ops.GlobalPool2D(kind="avg" if operator_type == "MEAN" else "max")
        if operator_type == "FULLY_CONNECTED":
            units = int(self.tensors[raw_inputs[1]].shape[0])
            return ops.Dense(units, use_bias=has_bias,
                             activation=_ACTIVATIONS.get(options.fusedActivationFunction))
        if operator_type == "ADD":
            return ops.Add(activation=_ACTIVATIONS.get(options.fusedActivationFunction))
        if operator_type in ("PAD", "PADV2"):
            paddings = self.constant_values(raw_inputs[1])
            input_rank = len(self.tensors[raw_inputs[0]].shape)
            dropped = input_rank - len(self.shape(raw_inputs[0]))
            return ops.Pad(paddings=tuple(tuple(int(v) for v in pair)
                                          for pair in paddings[dropped:]))
        if operator_type == "RESHAPE":
            return ops.Reshape(target_shape=self.shape(int(operator.outputs[0])))
        if operator_type == "SOFTMAX":
            return ops.Softmax()
        return None

    def generic_op(self, operator_type: str, inputs: list[int],
                   output_index: int) -> TfliteOperator:
        """Return a `TfliteOperator` with the weights and MACs that the file implies."""
        output_elements = self.element_count(output_index)
        weights = biases = macs = 0

        if operator_type in _WEIGHTED_TYPES and len(inputs) >= 2 and self.is_constant(inputs[1]):
            weight_shape = [int(size) for size in self.tensors[inputs[1]].shape]
            weights = math.prod(weight_shape)
            if len(inputs) >= 3 and self.is_constant(inputs[2]):
                biases = self.element_count(inputs[2])
            if operator_type == "CONV_2D":
                macs = output_elements * math.prod(weight_shape[1:])
            elif operator_type == "DEPTHWISE_CONV_2D":
                macs = output_elements * weight_shape[1] * weight_shape[2]
            elif operator_type == "FULLY_CONNECTED":
                macs = output_elements * weight_shape[-1]
            else:
                # TRANSPOSE_CONV: each input element scatters into kh*kw*out_channels outputs.
                activation = next(i for i in inputs if not self.is_constant(i))
                macs = self.element_count(activation) * math.prod(weight_shape[:3])
        else:
            self.note_unsupported(operator_type)

        return TfliteOperator(operator_type, self.shape(output_index) or (1,),
                              self.element_bytes(output_index), weights=weights,
                              biases=biases, mac_count=int(macs))


def _indices(values) -> list[int]:
    """Return a flatbuffer vector (a numpy array, a list or None) as a list of ints."""
    # The object API stores vectors as numpy arrays, whose truth value is ambiguous.
    return [] if values is None else [int(value) for value in values]
