"""MLP architectures: hidden dense layers with an activation and a training-only dropout."""
from __future__ import annotations

from dataclasses import dataclass, field

from architecture import Architecture

#: TFLite fuses ReLU and ReLU6 into FULLY_CONNECTED; tanh and sigmoid run as separate ops.
ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid")
DROPOUT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class MlpLayer:
    """One hidden layer: ``units`` neurons, an activation, then dropout in training only."""

    units: int
    activation: str = "relu"
    dropout: float = 0.0


@dataclass(frozen=True, eq=False)
class MlpArchitecture(Architecture):
    """Input flattened, then the hidden layers, then a softmax classifier."""

    layers: tuple[MlpLayer, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"layers": [{"units": layer.units, "activation": layer.activation,
                            "dropout": layer.dropout} for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: dict) -> "MlpArchitecture":
        if not isinstance(data, dict) or set(data) != {"layers"}:
            raise ValueError(f"An MLP architecture is a dict with the single key 'layers', "
                             f"but got {data!r}.")
        layers = []
        for index, layer in enumerate(data["layers"]):
            if not isinstance(layer, dict) or set(layer) != {"units", "activation", "dropout"}:
                raise ValueError(f"MLP layer {index} must have exactly the keys 'units', "
                                 f"'activation' and 'dropout', but got {layer!r}.")
            layers.append(MlpLayer(units=layer["units"], activation=layer["activation"],
                                   dropout=layer["dropout"]))
        return cls(layers=tuple(layers))

    def build_model(self, input_shape, num_classes):
        import keras

        inputs = keras.Input(shape=tuple(input_shape))
        x = keras.layers.Flatten()(inputs)
        for layer in self.layers:
            x = keras.layers.Dense(layer.units, activation=layer.activation)(x)
            if layer.dropout > 0:
                x = keras.layers.Dropout(layer.dropout)(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)

    def build_resource_graph(self, input_shape, num_classes):
        from resource_models import Graph, ops

        graph = Graph(name="mlp")
        x = graph.add_input(tuple(input_shape), name="input")
        x = graph.add(ops.Reshape(target_shape=(-1,)), x, name="flatten")
        for index, layer in enumerate(self.layers):
            # NOTE: tanh and sigmoid are counted as fused into the dense layer; TFLite runs them
            # as TANH / LOGISTIC ops, whose extra `units`-byte output buffer is not counted.
            x = graph.add(ops.Dense(units=layer.units, activation=layer.activation), x,
                          name=f"dense{index}")
        x = graph.add(ops.Dense(units=num_classes), x, name="classifier")
        x = graph.add(ops.Softmax(), x, name="softmax")
        graph.mark_output(x)
        return graph
