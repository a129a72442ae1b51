"""A new locator run's starting weights from a float locator file: the same network, or a narrower one cut from it.

`train-locator --init-from FILE` goes on training a locator from its exported file (the shipped `sign-locator-fp32`,
say), with the training and validation scenes it was drawn with. With a smaller `--width` than the file's, the
network is narrowed first, keeping in every layer the channels that carry the most (Li et al., "Pruning Filters for
Efficient ConvNets", 2017, and Molchanov et al., "Importance Estimation for Neural Network Pruning", 2019, rank
channels by what they pass on): a channel of the plain design runs from one pointwise convolution's output through
the next depthwise convolution to the next pointwise convolution's input, and its importance there is the mean of
what it carries into that pointwise convolution (after the depthwise layer's ReLU) times the norm of the weights
that read it. The channels feeding both heads count for both. Fine-tuning the narrowed network starts from what
the wide one learnt, where training the narrow design from scratch (width 32, README) drew a new, weaker locator.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from edgesight.runtime.learned_locate import difference_from_grid, read_locator_metadata
from edgesight.runtime.shipped import resolve_model
from keras import layers

from .config import LocatorTrainConfig
from .from_onnx import copy_weights
from .trainer import TrainError

# Largest difference between the file's centre logits or box channels and the rebuilt model's (float32 rounding).
MATCH_TOLERANCE = 1e-3
# The options that fix the network's design apart from its width, with the value a file that does not record one had.
DESIGN_OPTIONS = {"stride": 4, "downscale": 2, "context_stride": None, "fine_width": None, "pointwise_heads": False}


def source_train_options(init_from: str) -> tuple[Path, dict]:
    """The float locator file's path and the options it was trained with, or a TrainError naming what is missing."""
    import onnx

    path = resolve_model(init_from)
    if not path.is_file():
        raise TrainError(f"{path}: no such locator file; --init-from takes a float locator file or the shipped sign-locator-fp32.")
    props = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    read_locator_metadata(props, str(path))  # a classifier file, or no edgesight file, is refused by name here
    provenance = json.loads(props.get("edgesight.provenance", "{}"))
    if provenance.get("quantization"):
        raise TrainError(f"{path}: an int8 locator; --init-from needs the float file it was quantized from "
                         "(locator.onnx beside it, or the shipped sign-locator-fp32).")
    options = provenance.get("train_options")
    if not isinstance(options, dict) or not {"width", "seed", "val_fraction", "data"} <= set(options):
        raise TrainError(f"{path}: its metadata does not record the options it was trained with "
                         "(edgesight.provenance.train_options: width, seed, val_fraction, data), so its design and "
                         "validation scenes are unknown.")
    return path, options


def check_init_from(config: LocatorTrainConfig) -> None:
    """Refuse a run whose design or scene split differs from the file's, before minutes of reading and cutting crops."""
    path, source = source_train_options(config.init_from)
    differing = {name: (source.get(name, default), getattr(config, name)) for name, default in DESIGN_OPTIONS.items()
                 if source.get(name, default) != getattr(config, name)}
    if differing:
        raise TrainError(f"{path}: --init-from needs the file's design apart from a smaller --width; these differ "
                         "(file, this run): " + ", ".join(f"{name} {values[0]!r}, {values[1]!r}" for name, values in differing.items()))
    if config.width > source["width"] or (config.width < source["width"] and config.context_stride not in (None, config.stride)):
        raise TrainError(f"{path}: --width may be the file's ({source['width']}) or, for the plain design, smaller "
                         f"(its channels are then cut from the file's). Received: width={config.width}, "
                         f"context_stride={config.context_stride}")
    # The scenes are split by seed and fraction: drawn alike, the validation scenes are the ones the file never learnt
    # from, and the operating point chosen on them stays honest.
    same_scenes = Path(source["data"]).name == Path(config.data or "").name
    if not same_scenes or (config.seed, config.val_fraction) != (source["seed"], source["val_fraction"]):
        raise TrainError(f"{path}: was trained on {Path(source['data']).name} split with seed {source['seed']} and "
                         f"val_fraction {source['val_fraction']}; --init-from needs the same --data, --seed and "
                         f"--val-fraction, or its validation scenes would include scenes it learnt from. Received: "
                         f"{Path(config.data or '').name}, seed {config.seed}, val_fraction {config.val_fraction}")


def locator_from_file(config: LocatorTrainConfig, sample_crops: np.ndarray, build) -> keras.Model:
    """The file's network in Keras (checked against the file on `sample_crops`), narrowed to `config.width` if smaller.

    Args:
        sample_crops: uint8 training crops [N, H, W, 3]: the normalizations' statistics and the channels' importance.
        build: build_locator, called with a width (the file's, then the run's) and the run's other design options.
    """
    import onnx
    import onnxruntime as ort

    path, source = source_train_options(config.init_from)
    model = build(source["width"])
    proto = onnx.load(str(path))
    copy_weights(model, proto, path, f"the sign locator of width {source['width']}", sample_crops)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = sample_crops[:8]
    difference = difference_from_grid(session.run(None, {session.get_inputs()[0].name: images}), model(images, training=False).numpy())
    if difference > MATCH_TOLERANCE:
        raise TrainError(f"{path}: the Keras locator rebuilt from it differs from the file by up to {difference:.2g} "
                         f"(allowed {MATCH_TOLERANCE:g}); it cannot be trained on as it is.")
    return narrowed(model, build(config.width), sample_crops) if config.width < source["width"] else model


def narrowed(wide: keras.Model, narrow: keras.Model, sample_crops: np.ndarray) -> keras.Model:
    """`narrow` (the same plain design, fewer channels) with the weights of the channels of `wide` that carry the most.

    A pointwise convolution's output channels are chosen by what the following layers read of them (module
    docstring); the depthwise convolutions and normalizations after it keep the same channels, and the next
    pointwise convolution reads only those.
    """
    pointwise = [layer for layer in wide.layers if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.DepthwiseConv2D)]
    readers = [layer for layer in pointwise if layer.kernel_size == (1, 1)]
    # The input of every pointwise reader and head, as it reads it: after the depthwise layer's ReLU.
    probe = keras.Model(wide.input, [layer.input for layer in readers])
    inputs = [np.concatenate(parts) for parts in zip(*(_as_list(probe(sample_crops[start:start + 32], training=False))
                                                         for start in range(0, len(sample_crops), 32)))]
    read_strength = {layer.name: np.abs(values).mean(axis=(0, 1, 2)) * np.linalg.norm(layer.get_weights()[0][0, 0], axis=1)
                     for layer, values in zip(readers, inputs)}

    def source_convolution(tensor) -> keras.layers.Layer:
        """The convolution that makes a channel's values, through normalizations, ReLUs and depthwise layers."""
        layer = tensor._keras_history.operation
        while not (isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.DepthwiseConv2D)):
            layer = layer.input._keras_history.operation
        return layer

    importance: dict[str, np.ndarray] = {}
    for reader in readers:
        producer = source_convolution(reader.input).name
        importance[producer] = importance.get(producer, 0.0) + read_strength[reader.name]
    kept: dict[str, np.ndarray] = {}  # by layer name: the wide layer's output channels the narrow one keeps
    for layer in wide.layers:
        if isinstance(layer, layers.InputLayer) or not layer.weights:
            continue
        target = narrow.get_layer(layer.name)
        channels_in = kept.get(layer.input._keras_history.operation.name, np.arange(layer.input.shape[-1]))
        if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.DepthwiseConv2D):
            order = np.argsort(-importance[layer.name], kind="stable") if layer.name in importance else np.arange(layer.filters)
            channels_out = np.sort(order[:target.filters])  # all of them where the widths agree (stem, heads' outputs)
            values = layer.get_weights()
            target.set_weights([values[0][:, :, channels_in][..., channels_out], *(v[channels_out] for v in values[1:])])
        else:  # depthwise convolution or normalization: per channel
            channels_out = channels_in
            target.set_weights([v[..., channels_in, :] if v.ndim == 4 else v[channels_in] for v in layer.get_weights()])
        kept[layer.name] = channels_out
        for follower in _followers_without_weights(wide, layer):
            kept[follower] = channels_out
    return narrow


def _as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def _followers_without_weights(model: keras.Model, layer) -> list[str]:
    """Layers after `layer` that pass its channels on unchanged (ReLU), up to the next layer with weights."""
    followers, frontier = [], [layer.output]
    while frontier:
        tensor = frontier.pop()
        for other in model.layers:
            if not other.weights and not isinstance(other, layers.InputLayer) and any(t is tensor for t in _as_list(other.input)):
                if isinstance(other, layers.Concatenate):
                    continue
                followers.append(other.name)
                frontier.append(other.output)
    return followers
