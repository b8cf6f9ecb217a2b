"""μNAS's CIFAR-10 experiment: aging evolution over the CNN space.

Bounds: validation error 18%, peak memory usage 75,000 B, model size 75,000 B, 30M MACs.
Training: 130 epochs, batch 128, SGD with momentum 0.9 and weight decay 1e-5, learning rate
0.01, then 0.005 from epoch 90 and 0.001 from epoch 105; dropout 0.15; 6,000 rounds.
μNAS used TensorFlow Addons' SGDW; Keras 3's SGD applies weight decay decoupled
from the gradient too, but scaled by the learning rate, so the effective decay differs.
Data: the official python batches (cifar-10-batches-py) or train/ and test/ image folders.
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Cifar10
from search_algorithms import AgingEvoSearch


def learning_rate(epoch: int) -> float:
    """Return the learning rate of an epoch (a step schedule)."""
    if epoch < 90:
        return 0.01
    if epoch < 105:
        return 0.005
    return 0.001


search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=Cifar10(),
    optimizer=lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, weight_decay=1e-5),
    batch_size=128,
    epochs=130,
    callbacks=lambda: [keras.callbacks.LearningRateScheduler(learning_rate)],
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(dropout=0.15),
    population_size=100,
    sample_size=25,
    rounds=6000,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.18,
    peak_mem_bound=75_000,
    model_size_bound=75_000,
    mac_bound=30_000_000,
)
