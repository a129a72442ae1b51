"""How many signs a learned locator's proposals cover, before any classifier reads them: what training reports per
centre score on its validation scenes, and what export compares between a locator file and its int8 twin."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .frame_eval import GOAL_MIN_SIZE, MIN_IOU
from .learned_locate import MAX_BOXES, LocatorGeometry, LocatorOutput, decode, network_input
from .locate import iou
from .scenes import Scene

# Centre scores whose proposal recall reports list: the runtime's min_score is chosen from these.
SCORE_SWEEP = (0.05, 0.1, 0.2, 0.3, 0.5)


def proposal_recall(output_of: Callable[[np.ndarray], LocatorOutput], scenes: Iterable[Scene], geometry: LocatorGeometry,
                    scores=SCORE_SWEEP) -> list[dict]:
    """Per centre score: the share of signs of 24 px or more some proposal covers at IoU >= 0.5, and proposals per frame.

    `output_of` maps a network input ([1, H, W, 3] uint8) to the locator's output: a Keras model's grid as
    `LocatorOutput.of_grid` reads it, or a locator file's (`LearnedLocator.output`).
    """
    tallies = {score: {"found": 0, "proposals": 0} for score in scores}
    signs = frames = 0
    for scene in scenes:
        frames += 1
        output = output_of(network_input(scene.image_bgr, geometry))
        wanted = [sign for sign in scene.signs if sign.size >= GOAL_MIN_SIZE]
        signs += len(wanted)
        for score, tally in tallies.items():
            boxes = [box for box, _ in decode(output, geometry, scene.image_bgr.shape, score, MAX_BOXES)]
            tally["proposals"] += len(boxes)
            tally["found"] += sum(any(iou(sign.box, box) >= MIN_IOU for box in boxes) for sign in wanted)
    return [{"min_score": score, "recall_24px_and_more": round(tally["found"] / signs, 4) if signs else None,
             "proposals_per_frame": round(tally["proposals"] / max(1, frames), 1)} for score, tally in tallies.items()]
