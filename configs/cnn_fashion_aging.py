"""μNAS's Fashion-MNIST experiment: aging evolution over the CNN space.

Bounds: validation error 10%, peak memory usage 64,000 B, model size 64,000 B, 30M MACs.
Training: 45 epochs, batch 128, SGD with momentum 0.9 and weight decay 1e-5, learning rate
0.01, then 0.005 from epoch 25 and 0.001 from epoch 35; dropout 0.15 before dense layers.
μNAS used TensorFlow Addons' SGDW; Keras 3's SGD applies weight decay decoupled
from the gradient too, but scaled by the learning rate, so the effective decay differs.
Data: the four Fashion-MNIST IDX files (Debian: apt-get install dataset-fashion-mnist).
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import FashionMNIST
from search_algorithms import AgingEvoSearch


def learning_rate(epoch: int) -> float:
    """Return the learning rate of an epoch (a step schedule)."""
    if epoch < 25:
        return 0.01
    if epoch < 35:
        return 0.005
    return 0.001


search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=FashionMNIST(),
    optimizer=lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, weight_decay=1e-5),
    batch_size=128,
    epochs=45,
    callbacks=lambda: [keras.callbacks.LearningRateScheduler(learning_rate)],
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(dropout=0.15),
    population_size=100,
    sample_size=25,
    rounds=2000,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.1,
    peak_mem_bound=64_000,
    model_size_bound=64_000,
    mac_bound=30_000_000,
)
