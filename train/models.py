"""The model zoo: compact functional Keras CNNs taking uint8 NHWC RGB and returning softmax probabilities.

Functional, not Sequential: tf2onnx converts functional Keras 3 models (tf2onnx issue #2448).
Normalization is the first layer, so host code feeds raw uint8 pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
from keras import layers


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    build: Callable[[int, int, int], keras.Model]  # (height, width, num_classes) -> model


def _conv_bn_relu(x, filters: int, name: str, kernel: int = 3, strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _separable_bn_relu(x, filters: int, name: str):
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return layers.ReLU(name=f"{name}_pw_relu")(x)


def _flatten_head(inputs, x, dropout: float, num_classes: int, name: str) -> keras.Model:
    """Flatten (keeps where in the image a feature is: which way an arrow points), dropout, softmax classifier."""
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, layers.Softmax(name="probabilities")(logits), name=name)


def _input_and_scale(height: int, width: int):
    inputs = keras.Input((height, width, 3), dtype="uint8", name="image")
    return inputs, layers.Rescaling(1.0 / 255.0, name="scale")(inputs)


def _standardized_input(height: int, width: int):
    """uint8 input -> per-image standardization (zero mean, unit variance over all pixels).

    Dark and washed-out frames look alike to the network afterwards, and the operation lives in the
    graph, so no host code has to repeat it. The export keeps it in float (see export/quantize.py).
    """
    inputs, x = _input_and_scale(height, width)
    return inputs, layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="standardize")(x)


def build_cnn_tiny(height: int, width: int, num_classes: int) -> keras.Model:
    """A 4x4 stride-2 stem, then 3x3 convs 32-56-56, flatten head: under 5 M MACs at 32x32.

    Built for the int8 runtime path: few plain convolutions, because at this size each graph node
    costs about as much as its arithmetic, and a stride-2 stem, because a stride-1 conv on 3 input
    channels at full resolution ran 2-3x slower in onnxruntime than the stem's 4x4 patches.
    """
    inputs, x = _standardized_input(height, width)
    _, x = _cnn_tiny_stages(x)
    return _flatten_head(inputs, x, 0.3, num_classes, "cnn_tiny")


def _cnn_tiny_stages(x):
    """cnn-tiny's convolutions: (the first stage's output, the last stage's pooled output)."""
    x = _conv_bn_relu(x, 24, "stem", kernel=4, strides=2)
    first = _conv_bn_relu(x, 32, "stage1")
    x = layers.MaxPooling2D(name="pool1")(first)
    x = _conv_bn_relu(x, 56, "stage2a")
    x = _conv_bn_relu(x, 56, "stage2b")
    return first, layers.MaxPooling2D(name="pool2")(x)


def build_cnn_tiny_multiscale(height: int, width: int, num_classes: int) -> keras.Model:
    """cnn-tiny whose classifier also reads the first stage, max-pooled to the last stage's grid.

    Multi-scale features, after Sermanet & LeCun 2011, whose GTSRB network gained about 0.2 points from them:
    the first stage keeps finer detail (the digits of a speed limit) that the later ones pool away. It costs
    only the head's weights, each one multiply-accumulate per image: 22 k more parameters and MACs than cnn-tiny.
    """
    inputs, x = _standardized_input(height, width)
    first, x = _cnn_tiny_stages(x)
    first = layers.MaxPooling2D(4, name="pool_first")(first)
    return _flatten_head(inputs, layers.Concatenate(name="multiscale")([x, first]), 0.3, num_classes, "cnn_tiny_multiscale")


def build_cnn_tiny_separable(height: int, width: int, num_classes: int) -> keras.Model:
    """The 4x4 stride-2 stem, then seven separable convs 48-64 | 128-128-128 | 112, flatten head: under 5 M MACs at 32x32.

    A separable conv costs about a ninth of a plain one of its width, so the MACs cnn-tiny spends on four plain
    convs buy here seven layers, twice as wide, within the same 5 M MACs and 150 k parameters. Its int8 file runs
    about 1.6x as long as cnn-tiny's in onnxruntime, whose int8 depthwise convs earn less per MAC (README, distillation).
    """
    inputs, x = _standardized_input(height, width)
    x = _conv_bn_relu(x, 32, "stem", kernel=4, strides=2)
    x = _separable_bn_relu(x, 48, "stage1a")
    x = _separable_bn_relu(x, 64, "stage1b")
    x = layers.MaxPooling2D(name="pool1")(x)
    for name in ("stage2a", "stage2b", "stage2c"):
        x = _separable_bn_relu(x, 128, name)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = _separable_bn_relu(x, 112, "stage3")
    return _flatten_head(inputs, x, 0.3, num_classes, "cnn_tiny_separable")


def build_cnn_small(height: int, width: int, num_classes: int) -> keras.Model:
    """Three conv stages (32-64-128) and a separable 128 stage; flatten keeps where a sign's arrow points."""
    inputs, x = _input_and_scale(height, width)
    x = _conv_bn_relu(x, 32, "stage1")
    x = layers.MaxPooling2D(name="pool1")(x)
    x = _conv_bn_relu(x, 64, "stage2")
    x = layers.MaxPooling2D(name="pool2")(x)
    x = _conv_bn_relu(x, 128, "stage3")
    x = _separable_bn_relu(x, 128, "stage4")
    x = layers.MaxPooling2D(name="pool3")(x)
    return _flatten_head(inputs, x, 0.4, num_classes, "cnn_small")


def build_cnn_base(height: int, width: int, num_classes: int) -> keras.Model:
    """VGG-style 2x(32-64-128) conv stages after per-image standardization; flatten head."""
    inputs, x = _standardized_input(height, width)
    for stage, filters in enumerate((32, 64, 128), start=1):
        x = _conv_bn_relu(x, filters, f"stage{stage}a")
        x = _conv_bn_relu(x, filters, f"stage{stage}b")
        x = layers.MaxPooling2D(name=f"pool{stage}")(x)
    return _flatten_head(inputs, x, 0.5, num_classes, "cnn_base")


def _residual_block(x, filters: int, stride: int, name: str):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_project")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_project_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def build_resnet20(height: int, width: int, num_classes: int) -> keras.Model:
    """ResNet-20 (He et al. 2016, CIFAR variant): 16-32-64 channels, 3 stages of 3 basic blocks."""
    inputs, x = _standardized_input(height, width)
    x = _conv_bn_relu(x, 16, "stem")
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            x = _residual_block(x, filters, 2 if stage > 0 and block == 0 else 1, f"stage{stage + 1}_block{block + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    probabilities = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name="resnet20")


ARCHITECTURES = {
    arch.name: arch
    for arch in [
        Architecture("cnn-tiny", "per-image standardization, 4x4/2 stem 24, 3x3 convs 32-56-56, flatten head",
                     build_cnn_tiny),
        Architecture("cnn-tiny-ms", "per-image standardization, 4x4/2 stem 24, 3x3 convs 32-56-56, flatten head "
                     "reading the last stage and the first, pooled", build_cnn_tiny_multiscale),
        Architecture("cnn-tiny-sep", "per-image standardization, 4x4/2 stem 32, separable convs 48-64-128-128-128-112, "
                     "flatten head", build_cnn_tiny_separable),
        Architecture("cnn-small", "32-64-128 conv + separable 128, flatten head", build_cnn_small),
        Architecture("cnn-base", "per-image standardization, VGG-style 2x(32-64-128) conv, flatten head",
                     build_cnn_base),
        Architecture("resnet20", "ResNet-20: per-image standardization, 3x3 residual blocks 16-32-64, global pooling",
                     build_resnet20),
    ]
}


MIRROR_VIEWS = "mirror_views"  # the layer that stacks each image and its mirror image into one batch
MIRROR_DESCRIPTION = "averages its logits over the image and its mirror image (2x MACs)"


def build_model(name: str, height: int, width: int, num_classes: int, mirror_average: bool = False) -> keras.Model:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(ARCHITECTURES)}. Received: model={name!r}")
    model = ARCHITECTURES[name].build(height, width, num_classes)
    return with_mirror_average(model) if mirror_average else model


def is_mirror_averaged(model: keras.Model) -> bool:
    return any(layer.name == MIRROR_VIEWS for layer in model.layers)


def with_mirror_average(model: keras.Model) -> keras.Model:
    """The same network reading each image and its mirror image, its output the softmax of the two views' mean logits.

    Test-time augmentation inside the graph, so every engine that runs the file does it: the same layers and
    weights (shared, not copied), twice the MACs; both views run as one batch of 2N. Only for classes that a
    mirror image keeps (objects, never signs). Averaging logits, not probabilities, keeps one softmax at the end,
    which the int8 export keeps in float.
    """
    names = {layer.name for layer in model.layers}
    if not {"scale", "probabilities"} <= names:
        raise ValueError(f"{model.name}: a zoo model starts with the layer 'scale' and ends with 'probabilities'; "
                         "only such a model can average over mirror images.")

    def call(layer, *args, **kwargs):
        if layer.name == "scale":
            image = args[0]
            # Columns gathered in reverse order, not ops.flip: tf2onnx turns a flip into ReverseSequence, which
            # OpenCV DNN cannot run; a Gather every engine can.
            mirror = keras.ops.take(image, np.arange(image.shape[2] - 1, -1, -1), axis=2)
            args = (layers.Concatenate(axis=0, name=MIRROR_VIEWS)([image, mirror]),)
        elif layer.name == "probabilities":
            logits = args[0]  # rows 0..N-1 read the images, rows N..2N-1 their mirror images
            args = (keras.ops.mean(keras.ops.reshape(logits, (2, -1, logits.shape[-1])), axis=0),)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one image (conv, depthwise and dense layers; both views of a mirror average)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, out_h, out_w, channels = layer.output.shape
            total += out_h * out_w * channels * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, out_h, out_w, filters = layer.output.shape
            in_channels = layer.input.shape[-1]
            total += out_h * out_w * filters * in_channels * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total) * (2 if is_mirror_averaged(model) else 1)


def zoo_table(height: int, width: int, num_classes: int) -> str:
    """The architectures with their parameters and MACs at this input size, as a Markdown table."""
    lines = [f"| model | parameters | MACs at {height}x{width} | description |", "|---|---|---|---|"]
    for name, architecture in ARCHITECTURES.items():
        model = architecture.build(height, width, num_classes)
        lines.append(f"| {name} | {model.count_params():,} | {count_macs(model) / 1e6:.2f} M | {architecture.description} |")
    return "\n".join(lines)
