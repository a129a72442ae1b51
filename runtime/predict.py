"""`edgesight predict`: classify image files and print the results or JSON lines."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .classifier import Classifier
from .errors import SourceError
from .preprocess import region_box
from .results import JsonLinesWriter, detection, frame_record
from .shipped import SHIPPED_MODEL_NAMES
from .sources import list_images, read_image


@dataclass(frozen=True)
class PredictConfig:
    model: str = field(metadata={"help": f"edgesight ONNX model file, or a shipped model's name ({SHIPPED_MODEL_NAMES})"})
    images: list[str] = field(metadata={"help": "image files to classify, or folders of them (each folder's images in name order, numbers as numbers: frame2 before frame10)"})
    top_k: int = field(default=3, metadata={"help": "classes printed per image"})
    jsonl: bool = field(default=False, metadata={"help": "print JSON lines (the predictions contract) instead of text"})
    threads: int | None = field(default=None, metadata={"help": "onnxruntime threads (default: all cores)"})
    skip_bad_images: bool = field(default=False, metadata={"help": "skip image files that do not decode, naming each on stderr, "
                                                                    "instead of stopping at the first"})


def predict(config: PredictConfig) -> list[dict]:
    """Classify each image as a whole (the model's crop mode decides the region); returns the records."""
    if config.top_k < 1:
        raise ValueError(f"top_k must be >= 1. Received: top_k={config.top_k}")
    image_paths = [str(path) for name in config.images
                   for path in (list_images(Path(name)) if Path(name).is_dir() else [name])]
    classifier = Classifier(config.model, threads=config.threads)
    missing = [path for path in image_paths if not Path(path).is_file()]
    if missing:  # before any image is classified
        raise SourceError(f"no such image file: {', '.join(missing)}.")
    records = []
    started = time.monotonic()
    with JsonLinesWriter("-" if config.jsonl else None) as writer:
        for image_path in image_paths:
            image_bgr = read_image(image_path, config.skip_bad_images)
            if image_bgr is None:
                continue
            box = region_box(image_bgr.shape, classifier.spec, None)
            tic = time.perf_counter()
            predictions = classifier.classify_boxes(image_bgr, [box], config.top_k)[0]
            latency_ms = (time.perf_counter() - tic) * 1000
            record = frame_record(len(records), image_path, time.monotonic() - started, latency_ms, [detection(box, predictions[0])])
            records.append(record)
            writer.write(record)
            if not config.jsonl:
                ranked = ", ".join(f"{p.label} {p.score:.3f}" for p in predictions)
                print(f"{image_path}: {ranked}", file=sys.stdout)
    return records
