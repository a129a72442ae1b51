"""Train the shipped locator recipe with context dilations 2, 4, 8 (no dilation-1 layer): a probe, not a product
option. It patches build_locator for the one run; the option would join train-locator only if the rule in RULE.txt
adopted the result.

    python benchmarks/results/2026-12-06-context-2-4-8-locator/train_probe.py train-locator ARGS...
"""
import sys

import keras
from edgesight.cli.main import main
from edgesight.train import locator
from keras import layers

shipped_build = locator.build_locator


def without_dilation_1(width, stride=4, height=None, frame_width=None, context_stride=None, fine_width=None,
                       pointwise_heads=False):
    if stride != 4 or context_stride not in (None, 4) or pointwise_heads:
        raise SystemExit("this probe builds the plain stride-4 locator only")
    inputs = keras.Input((height, frame_width, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = locator._separable(x, width, "down", strides=2)
    for dilation in (2, 4, 8):
        x = locator._separable(x, width, f"context{dilation}", dilation=dilation)
    centre = layers.Conv2D(1, 1, name="centre", bias_initializer=keras.initializers.Constant(-4.0))(
        locator._separable(x, width, "centre_head"))
    box = layers.Conv2D(4, 1, name="box")(locator._separable(x, width, "box_head"))
    return keras.Model(inputs, layers.Concatenate(name="grid")([centre, box]), name="sign_locator")


locator.build_locator = without_dilation_1
sys.exit(main(sys.argv[1:]))
