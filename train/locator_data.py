"""Training crops for the learned sign locator, and their grid targets (and a teacher locator's, to distil from).

Two kinds of crop, both cut from road scenes shrunk by the locator's downscale:
- real: around the scenes' own signs (or anywhere), with their true boxes;
- pasted: GTSRB training signs (their ROI, any class, brightened or darkened, 10–128 px in the frame unless told otherwise)
  blended into sign-free places of the same scenes. A hundred scenes hold too few signs to learn
  from alone; pasting shows the network every class at every size on real backgrounds. A sign's ROI
  is the square around it, so its corners show the street GTSRB photographed; with `paste_shapes` only
  the sign inside its outline is pasted, and the scene shows around it as around a real sign.
The scenes given here must not include those the locator is evaluated on.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
from edgesight.runtime.datasets import LabelledRegions
from edgesight.runtime.learned_locate import LocatorGeometry
from edgesight.runtime.locate import ShrunkFrame
from edgesight.runtime.scenes import Scene

from .config import LocatorTrainConfig

# A sign's box in crop pixels: x1, y1 inclusive, x2, y2 exclusive (floats after downscaling).
CropBox = tuple[float, float, float, float]

MIN_PASTED_SIDE = 10  # frame pixels: smaller than any GTSDB sign

# Each GTSRB class's outline in its ROI: a polygon in unit-square coordinates, or None for a circle.
_DIAMOND = ((0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5))
_TRIANGLE = ((0.5, 0.0), (1.0, 1.0), (0.0, 1.0))
_TRIANGLE_DOWN = ((0.0, 0.0), (1.0, 0.0), (0.5, 1.0))
# A regular octagon whose flat sides touch the square: vertices at 22.5° + k·45° on a radius of 0.5 / cos 22.5°.
_OCTAGON = tuple((0.5 + 0.5 / np.cos(np.pi / 8) * np.cos(np.pi / 8 + k * np.pi / 4),
                  0.5 + 0.5 / np.cos(np.pi / 8) * np.sin(np.pi / 8 + k * np.pi / 4)) for k in range(8))
SIGN_OUTLINES: dict[int, tuple | None] = {
    11: _TRIANGLE, 12: _DIAMOND, 13: _TRIANGLE_DOWN, 14: _OCTAGON,  # priority at next intersection, priority road, give way, stop
    **{class_id: _TRIANGLE for class_id in range(18, 32)},  # the warning signs: danger ... animals
}  # every other class is round


@dataclass
class LocatorCrops:
    images: np.ndarray  # (N, crop, crop, 3) uint8 RGB
    boxes: list[list[CropBox]]


def shrink(scene: Scene, geometry: LocatorGeometry) -> tuple[np.ndarray, list[CropBox]]:
    """The scene as the locator sees it (RGB, downscaled) and its signs' boxes in those pixels."""
    small = ShrunkFrame(scene.image_bgr).by(geometry.downscale)  # the pixels the runtime gives the network
    scale = geometry.downscale
    boxes = [(x1 / scale, y1 / scale, (x2 + 1) / scale, (y2 + 1) / scale) for x1, y1, x2, y2 in (sign.box for sign in scene.signs)]
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB), boxes


def _cut(image: np.ndarray, boxes: list[CropBox], size: int, rng: np.random.Generator,
         around: CropBox | None) -> tuple[np.ndarray, list[CropBox]]:
    height, width = image.shape[:2]
    if height < size or width < size:
        image = cv2.copyMakeBorder(image, 0, max(0, size - height), 0, max(0, size - width), cv2.BORDER_REFLECT)
        height, width = image.shape[:2]
    if around is None:
        x, y = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
    else:  # the sign lands anywhere in the crop but its outer 16 pixels
        centre_x, centre_y = (around[0] + around[2]) / 2, (around[1] + around[3]) / 2
        x = int(np.clip(centre_x - rng.uniform(16, size - 16), 0, width - size))
        y = int(np.clip(centre_y - rng.uniform(16, size - 16), 0, height - size))
    shifted = [(x1 - x, y1 - y, x2 - x, y2 - y) for x1, y1, x2, y2 in boxes]
    # A sign cut by the crop's edge is kept only if its centre is inside: the grid has a cell for it.
    inside = [box for box in shifted if 0 <= (box[0] + box[2]) / 2 < size and 0 <= (box[1] + box[3]) / 2 < size]
    return image[y:y + size, x:x + size].copy(), inside


def outline_alpha(class_id: int, side: int) -> np.ndarray:
    """(side, side, 1) opacity of a GTSRB sign's outline in its square ROI, edges anti-aliased (drawn 4× larger, then shrunk)."""
    large = 4 * side
    mask = np.zeros((large, large), np.uint8)
    outline = SIGN_OUTLINES.get(class_id)
    if outline is None:
        cv2.circle(mask, (large // 2, large // 2), large // 2, 255, thickness=-1, lineType=cv2.LINE_AA)
    else:
        corners = np.clip(np.round(np.asarray(outline) * (large - 1)), 0, large - 1).astype(np.int32)
        cv2.fillPoly(mask, [corners], 255, lineType=cv2.LINE_AA)
    return (cv2.resize(mask, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)[..., np.newaxis]


def _square_alpha(side: int) -> np.ndarray:
    """Opacity of the whole square, edges feathered over an eighth of its side, so no hard square outline teaches the net a shortcut."""
    feather = max(1, side // 8)
    ramp = np.minimum(np.arange(side) + 1, np.arange(side)[::-1] + 1) / feather
    return np.clip(np.minimum(ramp[np.newaxis, :], ramp[:, np.newaxis]), 0.0, 1.0)[..., np.newaxis]


def _blend(canvas: np.ndarray, sign_rgb: np.ndarray, x: int, y: int, side: int, gain: float, alpha: np.ndarray) -> None:
    """Paste a sign, resized to `side` and scaled in brightness by `gain`, through the opacity `alpha`."""
    sign = np.clip(cv2.resize(sign_rgb, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) * gain, 0, 255)
    region = canvas[y:y + side, x:x + side].astype(np.float32)
    canvas[y:y + side, x:x + side] = (alpha * sign + (1 - alpha) * region).astype(np.uint8)


def _overlaps(box: CropBox, others: list[CropBox], gap: float = 2.0) -> bool:
    return any(not (box[2] + gap <= o[0] or box[0] >= o[2] + gap or box[3] + gap <= o[1] or box[1] >= o[3] + gap) for o in others)


def _jittered(image: np.ndarray, boxes: list[CropBox], jitter: float, rng: np.random.Generator) -> tuple[np.ndarray, list[CropBox]]:
    """The scene mirrored or not and scaled by a factor in [1/(1+jitter), 1+jitter] (log-uniform), with its boxes.

    A hundred scenes show each real sign at one size and from one side; the locator does not name classes,
    so a mirrored sign is still a sign to it.
    """
    if rng.random() < 0.5:
        width = image.shape[1]
        image = cv2.flip(image, 1)
        boxes = [(width - x2, y1, width - x1, y2) for x1, y1, x2, y2 in boxes]
    scale = float(np.exp(rng.uniform(-np.log1p(jitter), np.log1p(jitter))))
    height, width = image.shape[:2]
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    image = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x_scale, y_scale = new_width / width, new_height / height
    return image, [(x1 * x_scale, y1 * y_scale, x2 * x_scale, y2 * y_scale) for x1, y1, x2, y2 in boxes]


def paste_probabilities(labels, boosted_classes: list[int], boost: float) -> np.ndarray | None:
    """Per sign image, its chance of being the next one pasted: equal, but `boost` times higher for `boosted_classes`.

    None when nothing is boosted: build_crops then draws as it always did, so earlier runs rebuild the same crops.
    """
    if not boosted_classes:
        return None
    weights = np.where(np.isin(np.asarray(labels), boosted_classes), boost, 1.0)
    return weights / weights.sum()


def build_crops(scenes: list[Scene], signs: LabelledRegions | None, count: int, pasted_fraction: float, size: int,
                geometry: LocatorGeometry, seed: int, scene_jitter: float = 0.0,
                sign_probabilities: np.ndarray | None = None, paste_shapes: bool = False,
                max_pasted_side: int = LocatorTrainConfig.paste_max_side) -> LocatorCrops:
    """`count` crops of `size`², a `pasted_fraction` of them with 1–4 GTSRB signs pasted in.

    With `scene_jitter` > 0 each crop is cut from its scene mirrored at random and rescaled (see `_jittered`).
    `sign_probabilities` (see `paste_probabilities`) weights which signs are pasted; None draws them evenly.
    `paste_shapes` pastes each sign inside its outline (`SIGN_OUTLINES`) instead of its whole square ROI; it
    draws no random numbers, so the crops differ from the square ones only inside the pasted squares.
    Pasted signs are MIN_PASTED_SIDE to `max_pasted_side` frame pixels.
    """
    rng = np.random.default_rng(seed)
    shrunk = [shrink(scene, geometry) for scene in scenes]
    pasted = int(round(count * pasted_fraction)) if signs is not None and len(signs) else 0
    images, boxes = [], []
    for index in range(count):
        image, scene_boxes = shrunk[int(rng.integers(len(shrunk)))]
        if scene_jitter > 0:
            image, scene_boxes = _jittered(image, scene_boxes, scene_jitter, rng)
        if index >= pasted and scene_boxes and rng.random() < 0.7:
            crop, crop_boxes = _cut(image, scene_boxes, size, rng, scene_boxes[int(rng.integers(len(scene_boxes)))])
        else:
            crop, crop_boxes = _cut(image, scene_boxes, size, rng, None)
        if index < pasted:
            for _ in range(int(rng.integers(1, 5))):
                chosen = int(rng.integers(len(signs)) if sign_probabilities is None else rng.choice(len(signs), p=sign_probabilities))
                x1, y1, x2, y2 = signs.boxes_xyxy[chosen]
                sign_rgb = cv2.cvtColor(signs.images_bgr[chosen][y1:y2 + 1, x1:x2 + 1], cv2.COLOR_BGR2RGB)
                # Sizes spread evenly in log scale: as many small signs as large ones.
                side = int(np.exp(rng.uniform(np.log(MIN_PASTED_SIDE), np.log(max_pasted_side))) / geometry.downscale)
                side = min(side, size - 1)
                x, y = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
                box = (float(x), float(y), float(x + side), float(y + side))
                if not _overlaps(box, crop_boxes):
                    alpha = outline_alpha(int(signs.labels[chosen]), side) if paste_shapes else _square_alpha(side)
                    _blend(crop, sign_rgb, x, y, side, float(rng.uniform(0.5, 1.3)), alpha)
                    crop_boxes.append(box)
        images.append(crop)
        boxes.append(crop_boxes)
    return LocatorCrops(np.stack(images), boxes)


def grid_targets(boxes: list[list[CropBox]], size: int, geometry: LocatorGeometry) -> np.ndarray:
    """[N, cells, cells, 6]: centre heat (a Gaussian per sign, 1 at its cell), x/y offset, log width/height, centre mask."""
    cells = -(-size // geometry.stride)
    targets = np.zeros((len(boxes), cells, cells, 6), np.float32)
    rows, columns = np.mgrid[0:cells, 0:cells]
    for index, crop_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in crop_boxes:
            width, height = x2 - x1, y2 - y1
            centre_x, centre_y = (x1 + x2) / 2 / geometry.stride, (y1 + y2) / 2 / geometry.stride
            column, row = int(centre_x), int(centre_y)
            if not (0 <= column < cells and 0 <= row < cells) or min(width, height) < 1:
                continue
            # CenterNet's Gaussian: near misses of the centre are penalised less than far ones.
            sigma = max(0.5, max(width, height) / geometry.stride / 6)
            heat = np.exp(-((columns - column) ** 2 + (rows - row) ** 2) / (2 * sigma ** 2))
            targets[index, :, :, 0] = np.maximum(targets[index, :, :, 0], heat)
            targets[index, row, column, 1:] = [centre_x - column, centre_y - row, np.log(width), np.log(height), 1.0]
    return targets


TEACHER_BATCH = 16  # crops per teacher run: a 256-px crop's grid is small, memory is not what limits this


def teacher_targets(session: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
    """[N, cells, cells, 5] of what a teacher locator file says about each crop: centre score (a probability, not
    a logit), then its offset and log size channels as the file outputs them.

    The teacher reads the crops before augmentation: light and contrast change a locator's grid little, and
    reading them once took about a minute for 7,400 crops (AMD EPYC), where reading every augmented batch would
    add a second network's time to every step.
    """
    input_name = session.get_inputs()[0].name
    grids = np.concatenate([session.run(None, {input_name: images[start:start + TEACHER_BATCH]})[0]
                            for start in range(0, len(images), TEACHER_BATCH)])
    grids[..., 0] = 1.0 / (1.0 + np.exp(-grids[..., 0]))
    return grids.astype(np.float32)
