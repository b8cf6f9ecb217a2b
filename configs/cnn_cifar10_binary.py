"""μNAS's binary CIFAR-10 experiment: two groups of five classes, tiny bounds.

Groups: dog, frog, horse, ship, truck against airplane, automobile, bird, cat, deer.
Bounds: validation error 30%, peak memory usage 3,000 B, model size 2,000 B, 1M MACs.
The 32x32x3 int8 input alone takes 3,072 B, more than μNAS's bound, so μNAS cannot have
counted the input tensor. This tool counts it, because TensorFlow Lite Micro keeps the
input in its arena, so the bound below is μNAS's 3,000 B plus those 3,072 B.
Training: 80 epochs, batch 128, SGD with momentum 0.9 and weight decay 1e-5, learning rate
0.01, then 0.005 from epoch 35 and 0.001 from epoch 65.
μNAS used TensorFlow Addons' SGDW; Keras 3's SGD applies weight decay decoupled
from the gradient too, but scaled by the learning rate, so the effective decay differs.
"""
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import CIFAR10_BINARY_GROUPS, Cifar10
from search_algorithms import AgingEvoSearch


def learning_rate(epoch: int) -> float:
    """Return the learning rate of an epoch (a step schedule)."""
    if epoch < 35:
        return 0.01
    if epoch < 65:
        return 0.005
    return 0.001


search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=Cifar10(binary_classes=CIFAR10_BINARY_GROUPS),
    optimizer=lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, weight_decay=1e-5),
    batch_size=128,
    epochs=80,
    callbacks=lambda: [keras.callbacks.LearningRateScheduler(learning_rate)],
)

search_config = AgingEvoConfig(
    search_space=CnnSearchSpace(),
    population_size=100,
    sample_size=25,
    rounds=2000,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.3,
    peak_mem_bound=3_000 + 32 * 32 * 3,
    model_size_bound=2_000,
    mac_bound=1_000_000,
)
