"""Keras weights from an exported fp32 ONNX file, so training can go on from a model file, not only a run folder.

A shipped or exported model outlives the run folder it came from (a new machine, a colleague's model). Its
file names its zoo architecture and the Keras layer of every weight (tf2onnx keeps the layer names in the
initializer names), so the architecture is rebuilt in Keras and every weight is set from the file.

tf2onnx folded each batch normalization into the convolution before it: the file holds W' = W·γ/σ and
b' = β − μ·γ/σ, and no longer the split into kernel and normalization. Any split that multiplies back to
W', b' gives the same outputs; the one chosen here makes the convolution's output unit-variance on the
training images (kernel W'/s with s the output's standard deviation there), so the normalization's batch
statistics during training start where its moving statistics are and the first step does not jolt the net.
The rebuilt model is checked against the file on those images before anything trains on it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.errors import ModelFileError
from edgesight.runtime.metadata import ModelMetadata

from .trainer import TrainError, split_by_group

# Largest difference in any output probability between the file and the rebuilt model (float32 rounding).
MATCH_TOLERANCE = 1e-4


@dataclass(frozen=True)
class SourceModel:
    """An exported model file as a starting point for training."""

    path: Path
    metadata: ModelMetadata
    train_options: dict  # the options of the run that made it

    @property
    def architecture(self) -> str:
        return self.train_options["model"]

    def training_split(self, groups: list[str], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of its training and validation images in its dataset, drawn again with its own seed and fraction.

        A file keeps no list of its validation tracks, but the options that drew them: drawn again the same way,
        they are the same tracks (unless its run itself started from a run split another way).
        """
        return split_by_group(groups, labels, self.train_options["val_fraction"], self.train_options["seed"])


def read_source_model(source: str) -> SourceModel:
    """The metadata of an fp32 edgesight model file, refusing files training cannot start from."""
    try:
        classifier = Classifier(source)  # reads and checks the metadata as every runtime user of the file does
    except ModelFileError as error:
        raise TrainError(str(error)) from None
    path, metadata = classifier.path, classifier.metadata
    if metadata.quantization is not None:
        fp32_name = path.name.replace(".int8", "")
        raise TrainError(f"{path}: an int8 file; --init-from and --teacher need the fp32 file it was quantized from "
                         f"({fp32_name} beside it, or the shipped name ending in -fp32).")
    train_options = metadata.provenance.get("train_options")
    if not isinstance(train_options, dict) or not {"model", "val_fraction", "seed"} <= set(train_options):
        raise TrainError(f"{path}: its metadata does not record the options it was trained with "
                         "(edgesight.provenance.train_options: model, val_fraction, seed), so its architecture and "
                         "validation tracks are unknown.")
    return SourceModel(path, metadata, train_options)


def keras_model_from_onnx(source: SourceModel, sample_images: np.ndarray):
    """The source's architecture in Keras with every weight from the file; checked against it on `sample_images`.

    Args:
        sample_images: uint8 NHWC training images at the model's input size (a few hundred do).
    Raises:
        TrainError: a layer without its weights in the file, or outputs that differ from the file's.
    """
    import onnx

    from .models import ARCHITECTURES, build_model

    if source.architecture not in ARCHITECTURES:
        raise TrainError(f"{source.path}: made with architecture {source.architecture!r}, which this edgesight's zoo "
                         f"lacks ({', '.join(sorted(ARCHITECTURES))}).")
    spec = source.metadata.preprocess
    model = build_model(source.architecture, spec.height, spec.width, len(source.metadata.labels),
                        bool(source.train_options.get("mirror_average")))
    proto = onnx.load(str(source.path))
    copy_weights(model, proto, source.path, f"the zoo's {source.architecture}", sample_images)
    _check_same_outputs(model, proto, source.path, sample_images)
    return model


def copy_weights(model, proto, path: Path, architecture: str, sample_images: np.ndarray) -> None:
    """Set every weight of `model` from the converted graph `proto` of the same architecture, matched by layer name.

    A convolution followed by a batch normalization gets the folded weights split back (_set_normalized_weights);
    one without (a head's last 1x1 convolution) takes its kernel and bias as they are. A first convolution whose
    input scaling export folded into its kernel (export/simplify.fold_input_scaling; the graph then has no node of
    the Keras `Rescaling` layer) gets that scale taken out again, since the Keras model keeps the layer.

    Args:
        architecture: what the file should have been made from, as error messages name it ("the zoo's cnn-tiny").
        sample_images: uint8 NHWC inputs of the graph, for the normalizations' statistics.
    Raises:
        TrainError: a layer without its weights in the file.
    """
    from keras import layers
    from onnx import numpy_helper

    graph = proto.graph
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}

    def named(layer_name: str, kind: str, names) -> list[str]:
        # tf2onnx names nodes and weights after their op: "<model>_1/<layer>_1/convolution/merged_input:0".
        pattern = re.compile(rf"(^|/){re.escape(layer_name)}(_\d+)?/(?:{kind})")
        return [name for name in names if pattern.search(name)]

    def one(found: list, what: str, layer_name: str):
        if len(found) != 1:
            raise TrainError(f"{path}: expected one {what} of layer {layer_name!r} in the file, found {len(found)}; "
                             f"it was not made from {architecture}.")
        return found[0]

    node_names = [node.name for node in graph.node]
    folded_scale = {layer.output.name: float(layer.scale) for layer in model.layers
                    if isinstance(layer, layers.Rescaling) and not named(layer.name, "", node_names)}
    normalization_after = {bn.input.name: bn for bn in model.layers if isinstance(bn, layers.BatchNormalization)}
    folded = []  # (convolution, its normalization, the folded convolution's output in the graph, kernel, bias)
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D):
            node = one([node for node in graph.node if node.op_type == "Conv" and (
                named(layer.name, "convolution|depthwise|BiasAdd", [node.name, node.input[1]]))], "convolution", layer.name)
            if layer.output.name not in normalization_after:
                if not layer.use_bias or len(node.input) < 3:
                    raise TrainError(f"{path}: layer {layer.name!r} of {architecture} has neither a batch normalization "
                                     "after it nor a bias; it cannot be rebuilt from a file.")
                layer.set_weights([weights[node.input[1]].transpose(2, 3, 1, 0), weights[node.input[2]].reshape(-1)])
                continue
            kernel, bias, output = _fold_scale_and_shift(node, graph, weights)  # OIHW; depthwise: (channels, 1, h, w)
            kernel = _kernel_over_channels(kernel, layer)
            kernel = kernel / folded_scale.get(layer.input.name, 1.0)  # the Keras layer's input is still scaled
            if isinstance(layer, layers.DepthwiseConv2D):
                kernel = kernel.reshape(layer.kernel.shape[2], -1, *kernel.shape[2:]).transpose(2, 3, 0, 1)
            else:
                kernel = kernel.transpose(2, 3, 1, 0)
            folded.append((layer, normalization_after[layer.output.name], output, kernel, bias))
        elif isinstance(layer, layers.Dense):
            node = one([node for node in graph.node if node.op_type == "MatMul" and named(layer.name, "MatMul", [node.name])],
                       "matrix product", layer.name)
            add = [user for user in graph.node if node.output[0] in user.input and user.op_type == "Add"]
            # tf2onnx drops the bias addition of an all-zero bias.
            bias = next((weights[name] for name in add[0].input if name in weights), None) if len(add) == 1 else None
            kernel = weights[node.input[1]]
            layer.set_weights([kernel, bias if bias is not None else np.zeros(kernel.shape[1], np.float32)])
    _set_normalized_weights(folded, proto, sample_images)


def _kernel_over_channels(kernel: np.ndarray, layer) -> np.ndarray:
    """A stem's OIHW kernel as Keras's layer reads its channels. Export lets a locator's stem read the NHWC image as one
    plane of interleaved columns (export/simplify.py, stem_on_interleaved_columns), its kernel laid out as
    [O, 1, kh, kw * C] with entry (row, C * dx + c) the original (c, row, dx); other kernels are returned as they are."""
    from keras import layers

    if not isinstance(layer, layers.Conv2D):  # a depthwise kernel is (channels, 1, h, w) either way
        return kernel
    kernel_height, kernel_width, channels, _ = layer.kernel.shape
    if channels == 1 or kernel.shape[1:] != (1, kernel_height, kernel_width * channels):
        return kernel
    return kernel.reshape(len(kernel), kernel_height, kernel_width, channels).transpose(0, 3, 1, 2)


def _fold_scale_and_shift(conv, graph, weights: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """A convolution's kernel and bias with its batch normalization folded in, and the graph output that is their result.

    tf2onnx folds most normalizations into the convolution's weights and bias itself; after a depthwise
    convolution it leaves them as a Mul and an Add by per-channel constants, folded here the same way.
    """
    kernel = weights[conv.input[1]]
    if len(conv.input) > 2:
        return kernel, weights[conv.input[2]], conv.output[0]

    def only_consumer(tensor: str, op_type: str):
        users = [node for node in graph.node if tensor in node.input]
        constant = users[0].input[1] if len(users) == 1 and users[0].op_type == op_type else None
        return (users[0], weights[constant].reshape(-1)) if constant in weights else (None, None)

    mul, scale = only_consumer(conv.output[0], "Mul")
    add, shift = only_consumer(mul.output[0], "Add") if mul is not None else (None, None)
    if add is None:
        raise TrainError(f"convolution {conv.name!r} has neither a bias nor a per-channel Mul and Add after it; "
                         "its batch normalization cannot be found.")
    return kernel * scale.reshape(-1, 1, 1, 1), shift, add.output[0]


def _session(proto, extra_outputs: list[str] = ()):
    import onnx
    import onnxruntime as ort

    proto = onnx.ModelProto.FromString(proto.SerializeToString()) if extra_outputs else proto
    proto.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in extra_outputs)
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _run_in_batches(session, images: np.ndarray, outputs: list[str] | None) -> list[np.ndarray]:
    input_name = session.get_inputs()[0].name
    batches = [session.run(outputs, {input_name: images[start:start + 256]}) for start in range(0, len(images), 256)]
    return [np.concatenate(parts) for parts in zip(*batches)]


def _set_normalized_weights(folded: list, proto, sample_images: np.ndarray) -> None:
    """Split each folded convolution into a kernel with unit-variance output and the normalization after it."""
    from keras import layers

    names = [output for _, _, output, _, _ in folded]
    outputs = _run_in_batches(_session(proto, names), sample_images, names)
    for (conv, normalization, _, kernel, bias), folded_output in zip(folded, outputs):
        # The folded output is W'x + b' (NCHW): the kernel's own output W'x has its mean minus b' and its spread.
        mean = folded_output.mean(axis=(0, 2, 3)) - bias
        spread = folded_output.std(axis=(0, 2, 3))
        spread = np.where(spread > 1e-6, spread, 1.0)  # a channel dead on these images keeps its kernel as it is
        # A depthwise kernel (h, w, channels, multiplier) holds output channel c·multiplier + j at [..., c, j].
        per_output = spread.reshape(kernel.shape[2:]) if isinstance(conv, layers.DepthwiseConv2D) else spread
        conv.set_weights([(kernel / per_output).astype(np.float32)])
        epsilon = normalization.epsilon
        # With moving variance 1: gamma / sqrt(1 + eps) = spread and beta = b' + mean give back W'x + b' exactly.
        normalization.set_weights([(spread * np.sqrt(1.0 + epsilon)).astype(np.float32), (bias + mean).astype(np.float32),
                                   (mean / spread).astype(np.float32), np.ones_like(spread, dtype=np.float32)])


def _check_same_outputs(model, proto, path: Path, sample_images: np.ndarray) -> None:
    expected = _run_in_batches(_session(proto), sample_images, None)[0]
    rebuilt = model.predict(sample_images, batch_size=256, verbose=0)
    difference = float(np.max(np.abs(rebuilt - expected)))
    if difference > MATCH_TOLERANCE:
        raise TrainError(f"{path}: the Keras model rebuilt from it differs from the file by up to {difference:.2g} in a "
                         f"probability (allowed {MATCH_TOLERANCE:g}); it cannot be trained on as it is.")
