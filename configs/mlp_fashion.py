"""μNAS's MLP experiment on Fashion-MNIST, with aging evolution.

μNAS searched this task with Bayesian optimisation; this config uses aging evolution.
Bounds: validation error 18%, peak memory usage 200 B, model size 30,000 B, 30,000 MACs.
The 28x28 int8 input alone takes 784 B, more than μNAS's bound, so μNAS cannot have
counted the input tensor. This tool counts it, because TensorFlow Lite Micro keeps the
input in its arena, so the bound below is μNAS's 200 B plus those 784 B.
Training: 30 epochs, batch 128, Adam with learning rate 0.001, halved after 4 epochs
without improvement of the validation loss.
"""
import keras

from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import FashionMNIST
from mlp import MlpSearchSpace
from search_algorithms import AgingEvoSearch

search_algorithm = AgingEvoSearch

training_config = TrainingConfig(
    dataset=FashionMNIST(),
    optimizer=lambda: keras.optimizers.Adam(learning_rate=0.001),
    batch_size=128,
    epochs=30,
    callbacks=lambda: [keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=4)],
)

search_config = AgingEvoConfig(
    search_space=MlpSearchSpace(),
    population_size=100,
    sample_size=25,
    rounds=2000,
    max_parallel_evaluations=2,
)

bound_config = BoundConfig(
    error_bound=0.18,
    peak_mem_bound=200 + 28 * 28,
    model_size_bound=30_000,
    mac_bound=30_000,
)
