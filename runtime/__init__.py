"""edgesight.runtime: load a self-describing ONNX model and classify camera frames.

Depends only on numpy, onnxruntime and OpenCV, so it runs on a device with the base install.
"""
from .camera import CameraSettings
from .classifier import Classifier, Prediction
from .errors import DatasetError, EdgesightError, ModelFileError, SourceError
from .metadata import ModelMetadata, parse_metadata
from .preprocess import PreprocessSpec, center_box, crop_region, full_box
from .stream import StreamOptions, StreamResult, stream

__all__ = [
    "Classifier", "Prediction", "DatasetError", "EdgesightError", "ModelFileError", "SourceError",
    "ModelMetadata", "parse_metadata", "PreprocessSpec", "center_box", "crop_region", "full_box",
    "StreamOptions", "StreamResult", "stream", "CameraSettings",
]
