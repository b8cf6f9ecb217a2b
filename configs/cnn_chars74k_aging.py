"""μNAS's Chars74K experiment: 48x48 grayscale characters, aging evolution.

Bounds: validation error 30%, peak memory usage 10,000 B, model size 20,000 B, 1M MACs.
Training: 60 epochs, batch 80, SGD with momentum 0.9 and weight decay 1e-4, learning rate
0.01, then 0.005 from epoch 35; dropout 0.15.
μNAS used TensorFlow Addons' SGDW; Keras 3's SGD applies weight decay decoupled
from the gradient too, but scaled by the learning rate, so the effective decay differs.
Data: the EnglishFnt folder layout (SampleNNN/*.png) or an npz of prepared arrays.
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Chars74K
from search_algorithms import AgingEvoSearch


def learning_rate(epoch: int) -> float:
    """Return the learning rate of an epoch (a step schedule)."""
    if epoch < 35:
        return 0.01
    return 0.005


search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=Chars74K(image_size=(48, 48)),
    optimizer=lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, weight_decay=1e-4),
    batch_size=80,
    epochs=60,
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
    error_bound=0.3,
    peak_mem_bound=10_000,
    model_size_bound=20_000,
    mac_bound=1_000_000,
)
