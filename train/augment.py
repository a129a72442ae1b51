"""Augmentation in the tf.data pipeline (not in the model), so the exported graph has none of it."""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def build_augmenter(mirror_invariant: bool, seed: int) -> keras.Sequential:
    """Random geometry and photometry as a camera sees signs and objects; flips only when allowed."""
    steps = [
        layers.RandomRotation(12 / 360, fill_mode="nearest", seed=seed),
        layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", seed=seed + 1),
        layers.RandomZoom((-0.15, 0.15), fill_mode="nearest", seed=seed + 2),
        layers.RandomBrightness(0.3, value_range=(0, 255), seed=seed + 3),
        layers.RandomContrast(0.35, seed=seed + 4),
    ]
    if mirror_invariant:
        steps.insert(0, layers.RandomFlip("horizontal", seed=seed + 5))
    return keras.Sequential(steps, name="augment")


def training_dataset(images_nhwc, labels, batch_size: int, augmenter: keras.Sequential, seed: int) -> tf.data.Dataset:
    """Shuffled, augmented batches of uint8 images, as the deployed model receives them."""

    def augment(batch_nhwc, batch_labels):
        augmented = augmenter(tf.cast(batch_nhwc, tf.float32), training=True)
        return tf.cast(tf.clip_by_value(tf.round(augmented), 0, 255), tf.uint8), batch_labels

    return (
        tf.data.Dataset.from_tensor_slices((images_nhwc, labels))
        .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def evaluation_dataset(images_nhwc, labels, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((images_nhwc, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
