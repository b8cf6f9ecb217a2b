"""Model size, MACs and peak memory usage of int8 TFLite models on microcontrollers.

The package has no TensorFlow dependency: search spaces describe a candidate as a `Graph` of
`ops`, and the figures come from shapes alone.
"""
from resource_models import ops
from resource_models.graph import Graph, OpNode
from resource_models.op import Op
from resource_models.schedule import ScheduleResult
from resource_models.tensor import Tensor

__all__ = ["Graph", "OpNode", "Op", "ScheduleResult", "Tensor", "ops"]
