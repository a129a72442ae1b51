"""Batch-norm statistics re-estimated after training on the training images as they are, unaugmented ("precise BN").

While a model trains, each BatchNormalization layer keeps a running mean and variance of the batches it sees:
augmented images, under weights that keep moving. The augmentation's sub-pixel shifts resample every image, so
for 32x32 CIFAR images those statistics describe blurrier images than the sharp ones the model will read.
Measured on ResNet-20 CIFAR-10 runs (2026-11-27, 2,500 validation images, mirror average), re-estimated statistics
raised validation accuracy from 90.36% to 91.28% (a distilled run) and from 90.52% to 91.60% (a run trained through
the mirror average, now the shipped cifar10), and by 0.24 points after a run shifted by whole pixels, where the
running statistics had only lagged behind the weights. On GTSRB sign models, whose regions are resized from larger
crops anyway, they moved it by -0.07 to +0.03 points. So the trainer re-estimates them after training and keeps
them only if validation accuracy does not fall (train/trainer.py).
"""
from __future__ import annotations

import numpy as np

BN_STATISTICS_CHOICES = ("refit", "keep")  # --bn-statistics
REFIT_BATCHES = 40  # of REFIT_BATCH_SIZE images: about 10,000, as in the precise-BN literature
REFIT_BATCH_SIZE = 256


def batchnorm_layers(model) -> list:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def refit_batchnorm_statistics(model, images_nhwc: np.ndarray, seed: int) -> int:
    """Set every batch-norm layer's moving mean and variance to the mean of its per-batch statistics over up to
    REFIT_BATCHES batches of `images_nhwc` (uint8, as the model reads them); returns the number of images used.

    The forward passes run in training mode, so each layer normalizes with its batch's statistics as in training
    and the layers after it see what they saw then. Nothing else changes: the zoo's only training-mode layers are
    batch norm and the dropout just before the classifier, where no statistics are kept.
    """
    norms = batchnorm_layers(model)
    if not norms:
        return 0
    chosen = np.random.default_rng(seed).permutation(len(images_nhwc))[: REFIT_BATCHES * REFIT_BATCH_SIZE]
    momenta = [layer.momentum for layer in norms]
    try:
        for step, start in enumerate(range(0, len(chosen), REFIT_BATCH_SIZE)):
            for layer in norms:
                layer.momentum = step / (step + 1)  # moving = old * momentum + batch * (1 - momentum): a running mean
            model(images_nhwc[np.sort(chosen[start : start + REFIT_BATCH_SIZE])], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return len(chosen)


def accuracy(model, images_nhwc: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(model.predict(images_nhwc, batch_size=512, verbose=0), axis=1) == labels))


def refit_if_better(model, training_images: np.ndarray, validation_images: np.ndarray, validation_labels: np.ndarray,
                    seed: int) -> dict:
    """Re-estimate the statistics and keep them if validation accuracy does not fall; returns what was measured."""
    norms = batchnorm_layers(model)
    before = accuracy(model, validation_images, validation_labels)
    saved = [layer.get_weights() for layer in norms]
    images = refit_batchnorm_statistics(model, training_images, seed)
    after = accuracy(model, validation_images, validation_labels)
    kept = after >= before
    if not kept:
        for layer, weights in zip(norms, saved):
            layer.set_weights(weights)
    return {"images": images, "validation_accuracy_before": before, "validation_accuracy_after": after, "kept": kept}
