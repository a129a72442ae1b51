"""What a finished run reports: training curves, confusion matrix, per-class accuracy."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on headless machines too
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from edgesight.runtime.files import atomic_path, write_text_atomic  # noqa: E402


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), totals, out=np.full(len(matrix), np.nan), where=totals > 0)


def save_training_curves(history: dict[str, list[float]], path: Path) -> None:
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, axis in (("loss", loss_axis), ("accuracy", accuracy_axis)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                axis.plot(epochs, values, style, label=("validation " if prefix else "training ") + key)
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def save_confusion_matrix(matrix: np.ndarray, labels: tuple[str, ...], path: Path, title: str) -> None:
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(6.0, 0.22 * len(labels) + 3)
    figure, axis = plt.subplots(figsize=(size, size))
    # Log scale so the rare confusions, the interesting part, are visible beside a bright diagonal.
    image = axis.imshow(rates + 1e-4, cmap="viridis", norm=matplotlib.colors.LogNorm(vmin=1e-4, vmax=1))
    axis.set_xticks(range(len(labels)), [f"{i} {name}" for i, name in enumerate(labels)], rotation=90, fontsize=6)
    axis.set_yticks(range(len(labels)), [f"{i} {name}" for i, name in enumerate(labels)], fontsize=6)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.colorbar(image, fraction=0.046, pad=0.04, label="fraction of the true class")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def write_per_class_csv(matrix: np.ndarray, labels: tuple[str, ...], path: Path) -> None:
    accuracy = per_class_accuracy(matrix)
    lines = ["class_id,label,test_images,correct,accuracy"]
    for class_id, name in enumerate(labels):
        lines.append(f'{class_id},"{name}",{matrix[class_id].sum()},{matrix[class_id, class_id]},{accuracy[class_id]:.4f}')
    write_text_atomic(path, "\n".join(lines) + "\n")
