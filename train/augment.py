"""Augmentation in the tf.data pipeline (not in the model), so the exported graph has none of it."""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers


@dataclass(frozen=True)
class Augmentation:
    rotation_degrees: float
    translate: float  # fraction of height/width
    zoom: float  # fraction, in and out
    brightness: float
    contrast: float
    mirror: bool  # never for signs: a mirrored "keep left" is "keep right"
    shadow: float = 0.0  # chance that a straight-edged shadow darkens part of the image
    erasing: float = 0.0  # chance that a random patch is replaced by noise (Cutout / Random Erasing)
    # Range of RandomSaturation's factor (0 grey, 0.5 unchanged, 1 fully saturated), or None.
    saturation: tuple[float, float] | None = None
    # Shift by whole pixels (nearest sampling) rather than resample: a fraction of a pixel blurs a 32x32 image.
    whole_pixel_shifts: bool = False
    camera: float = 0.0  # chance of each of CameraConditions' degradations, after the rest


class RandomShadow(layers.Layer):
    """Darken the image on one side of a random straight edge, as a pole's or a branch's shadow does.

    GTSRB's training tracks hold few half-shadowed signs, yet road signs often are; without this
    the models misread a whole test track of a half-shadowed "pedestrian crossing" sign.
    """

    def __init__(self, probability: float, darkest: float = 0.3, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.probability, self.darkest = probability, darkest
        self.generator = keras.random.SeedGenerator(seed)  # EpochSeeds resets it like the Keras layers'

    def call(self, images, training=True):
        if not training:
            return images
        ops = keras.ops
        count, height, width = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
        draw = lambda low=0.0, high=1.0: keras.random.uniform((count, 1, 1, 1), low, high, seed=self.generator)  # noqa: E731
        applies, angle, factor = draw() < self.probability, draw(0.0, 6.2831853), draw(self.darkest, 1.0)
        through_x, through_y = draw() * ops.cast(width, "float32"), draw() * ops.cast(height, "float32")
        rows = ops.reshape(ops.arange(height, dtype="float32"), (1, -1, 1, 1))
        columns = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, -1, 1))
        shaded = ops.cos(angle) * (columns - through_x) + ops.sin(angle) * (rows - through_y) > 0
        return images * ops.where(ops.logical_and(applies, shaded), factor, 1.0)


class CameraConditions(layers.Layer):
    """Degrade each image as another camera would give it: exposure, focus, sensor noise, compression.

    Each is drawn per image, with its own chance: the light scaled by a factor log-uniform in
    [`darkest`, `brightest`] and clipped at 255 as a sensor saturates; a Gaussian blur of sigma `blur_sigma` blended in
    by a uniform share; Gaussian noise of a standard deviation uniform up to `noise_sigma` levels; JPEG compression
    at a quality uniform in `jpeg_quality`, applied last, as a camera encodes last. GTSDB's scenes come from one
    daylight camera; a locator trained on them alone lost a sixth of its signs at half the light
    (benchmarks/camera_conditions.py). Inputs and outputs are float 0-255.
    """

    def __init__(self, chance: float = 0.35, darkest: float = 0.35, brightest: float = 1.7, blur_sigma: float = 1.0,
                 noise_sigma: float = 8.0, jpeg_quality: tuple[int, int] = (20, 90), seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.chance, self.darkest, self.brightest = chance, darkest, brightest
        self.blur_sigma, self.noise_sigma, self.jpeg_quality = blur_sigma, noise_sigma, jpeg_quality
        self.generator = keras.random.SeedGenerator(seed)  # EpochSeeds resets it like the Keras layers'

    def call(self, images, training=True):
        if not training:
            return images
        count = tf.shape(images)[0]

        def draw(low=0.0, high=1.0):
            return keras.random.uniform((count, 1, 1, 1), low, high, seed=self.generator)

        def chosen(value, unchanged):
            return tf.where(draw() < self.chance, value, unchanged)

        gain = chosen(tf.exp(draw(math.log(self.darkest), math.log(self.brightest))), 1.0)
        images = tf.minimum(images * gain, 255.0)
        side = 2 * math.ceil(3 * self.blur_sigma) + 1
        blurred = keras.ops.image.gaussian_blur(images, (side, side), (self.blur_sigma, self.blur_sigma))
        images += chosen(draw(), 0.0) * (blurred - images)
        images += chosen(draw(0.0, self.noise_sigma), 0.0) * keras.random.normal(tf.shape(images), seed=self.generator)
        pixels = tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)
        quality = tf.cast(tf.reshape(draw(*self.jpeg_quality), (-1,)), tf.int32)
        compress = tf.reshape(draw() < self.chance, (-1,))

        def camera_output(item):  # only the chosen images are encoded: JPEG is the costliest step here
            image, image_quality, compressed = item
            return tf.cond(compressed, lambda: tf.image.adjust_jpeg_quality(image, image_quality), lambda: image)

        return tf.cast(tf.map_fn(camera_output, (pixels, quality, compress), fn_output_signature=tf.uint8), images.dtype)


AUGMENTATIONS = {
    # A hand-held camera's view of a sign: tilted, off-centre, nearer or farther, any light, and
    # sun-faded paint (a bleached red rim made the models misread a whole test track of "bend" signs).
    "signs": Augmentation(rotation_degrees=12, translate=0.08, zoom=0.15, brightness=0.3, contrast=0.35, mirror=False,
                          shadow=0.3, saturation=(0.25, 0.6)),
    # The same through other cameras than GTSRB's: darker or over-exposed, blurred, noisy, JPEG-compressed.
    "signs-cameras": Augmentation(rotation_degrees=12, translate=0.08, zoom=0.15, brightness=0.3, contrast=0.35, mirror=False,
                                  shadow=0.3, saturation=(0.25, 0.6), camera=0.35),
    # Objects: mirror images are the same class; shifted crops as in the usual CIFAR recipe.
    # Erased patches teach the net to use the whole object, not its one most telling part (occlusion).
    "objects": Augmentation(rotation_degrees=0, translate=0.125, zoom=0.1, brightness=0.2, contrast=0.2, mirror=True,
                            erasing=0.5),
    # The classic CIFAR recipe alone (shifts of 4 pixels and mirror images): a small network that underfits the
    # full profile (ResNet-20 ended at 91.6% training accuracy under it) can fit its data closer.
    "objects-light": Augmentation(rotation_degrees=0, translate=0.125, zoom=0.0, brightness=0.0, contrast=0.0, mirror=True),
    # The same by whole pixels, as the classic recipe shifts: training images stay as sharp as the ones the model
    # reads. Its running batch-norm statistics still lag behind the weights: after ten epochs from the shipped
    # cifar10 the refit gained 0.24 points of validation (see train/batchnorm.py).
    "objects-sharp": Augmentation(rotation_degrees=0, translate=0.125, zoom=0.0, brightness=0.0, contrast=0.0, mirror=True,
                                  whole_pixel_shifts=True),
}


def build_augmenter(name: str, seed: int, mixup: float = 0.0) -> keras.Sequential:
    """The task's random geometry and photometry as Keras layers, then MixUp with Beta(mixup, mixup) shares if mixup > 0.

    MixUp leaves the labels as they are: only a teacher, which reads the blended images, can say what
    they show (see edgesight.train.distill).
    """
    settings = AUGMENTATIONS[name]
    steps = []
    if settings.mirror:
        steps.append(layers.RandomFlip("horizontal", seed=seed + 5))
    if settings.rotation_degrees:
        steps.append(layers.RandomRotation(settings.rotation_degrees / 360, fill_mode="nearest", seed=seed))
    steps.append(layers.RandomTranslation(settings.translate, settings.translate, fill_mode="nearest", seed=seed + 1,
                                          interpolation="nearest" if settings.whole_pixel_shifts else "bilinear"))
    if settings.zoom:
        steps.append(layers.RandomZoom((-settings.zoom, settings.zoom), fill_mode="nearest", seed=seed + 2))
    if settings.brightness:
        steps.append(layers.RandomBrightness(settings.brightness, value_range=(0, 255), seed=seed + 3))
    if settings.contrast:
        steps.append(layers.RandomContrast(settings.contrast, seed=seed + 4))
    if settings.saturation:
        steps.append(layers.RandomSaturation(settings.saturation, value_range=(0, 255), seed=seed + 8))
    if settings.shadow:
        steps.append(RandomShadow(settings.shadow, seed=seed + 6))
    if settings.erasing:
        # A (p, p) factor: a single float would draw each image's probability from [0, p].
        steps.append(layers.RandomErasing(factor=(settings.erasing, settings.erasing), scale=(0.02, 0.25),
                                          value_range=(0, 255), seed=seed + 7))
    if settings.camera:
        steps.append(CameraConditions(settings.camera, seed=seed + 10))
    if mixup:
        steps.append(layers.MixUp(alpha=mixup, seed=seed + 9))
    return keras.Sequential(steps, name="augment")


class EpochSeeds(keras.callbacks.Callback):
    """Make each epoch's shuffle order and augmentation a function of (seed, epoch) alone.

    So a run resumed at epoch k sees the very batches an uninterrupted run would have seen.
    """

    def __init__(self, augmenter: keras.Sequential, seed: int):
        super().__init__()
        self.augmenter = augmenter
        self.seed = seed
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch)
        # Augmentation layers keep their SeedGenerator as `generator`, dropout as `seed_generator`;
        # neither state is in a checkpoint, so both are set from (seed, epoch) instead.
        generators = [layer.generator for layer in self.augmenter.layers]
        generators += [layer.seed_generator for layer in self.model.layers if hasattr(layer, "seed_generator")]
        for index, generator in enumerate(generators):
            generator.state.assign(tf.cast([self.seed * 1000 + index, epoch], generator.state.dtype))


def training_dataset(images_nhwc, labels, batch_size: int, augmenter: keras.Sequential, seeds: EpochSeeds) -> tf.data.Dataset:
    """Shuffled, augmented batches of uint8 images, as the deployed model receives them.

    The order is drawn anew each epoch from (seed, epoch) as EpochSeeds sets them, before the
    epoch's iterator starts.
    """
    images = tf.constant(images_nhwc)
    targets = tf.constant(labels)
    count = len(labels)

    def epoch_order(_):
        seed = tf.stack([tf.constant(seeds.seed, tf.int64), seeds.epoch.read_value()])
        return tf.data.Dataset.from_tensor_slices(tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed))

    def augment(batch_index):
        batch_nhwc = tf.gather(images, batch_index)
        augmented = augmenter(tf.cast(batch_nhwc, tf.float32), training=True)
        return tf.cast(tf.clip_by_value(tf.round(augmented), 0, 255), tf.uint8), tf.gather(targets, batch_index)

    return (
        tf.data.Dataset.range(1)
        .flat_map(epoch_order)
        .apply(tf.data.experimental.assert_cardinality(count))  # Keras then knows where an epoch ends
        .batch(batch_size)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def evaluation_dataset(images_nhwc, labels, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((images_nhwc, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
