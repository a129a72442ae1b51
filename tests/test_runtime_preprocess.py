import numpy as np
import pytest
from edgesight.runtime.preprocess import (
    PreprocessSpec,
    center_box,
    crop_region,
    expand_box,
    full_box,
    region_box,
)


def test_expand_box_adds_margin_of_box_size_and_clips_to_frame():
    assert expand_box((10, 20, 29, 39), 0.1, (100, 100, 3)) == (8, 18, 31, 41)
    assert expand_box((0, 0, 9, 9), 0.5, (20, 20, 3)) == (0, 0, 14, 14)
    assert expand_box((10, 10, 19, 19), 0.5, (20, 20, 3)) == (5, 5, 19, 19)


def test_center_and_full_boxes_are_inclusive():
    assert full_box((480, 640, 3)) == (0, 0, 639, 479)
    assert center_box((480, 640, 3), 0.5) == (200, 120, 439, 359)
    assert center_box((480, 640, 3)) == (80, 0, 559, 479)


def test_crop_region_returns_rgb_of_the_box_only():
    frame_bgr = np.zeros((100, 200, 3), np.uint8)
    frame_bgr[40:60, 90:110] = (255, 0, 0)  # pure blue in BGR
    spec = PreprocessSpec(height=8, width=8, crop="box", box_margin=0.0, resize="area")
    crop_rgb = crop_region(frame_bgr, spec, (90, 40, 109, 59))
    assert crop_rgb.shape == (8, 8, 3) and crop_rgb.dtype == np.uint8
    assert np.all(crop_rgb[..., 2] == 255) and np.all(crop_rgb[..., :2] == 0)


def test_crop_region_margin_brings_in_context():
    frame_bgr = np.zeros((100, 100, 3), np.uint8)
    frame_bgr[40:60, 40:60] = 255
    with_margin = crop_region(frame_bgr, PreprocessSpec(20, 20, "box", 0.5, "area"), (40, 40, 59, 59))
    # The box is the middle half of the crop: a dark border of 5 px around a white centre.
    assert with_margin[10, 10].min() == 255 and with_margin[1, 1].max() == 0


def test_box_mode_without_box_uses_whole_frame_and_center_mode_the_square():
    spec_box = PreprocessSpec(4, 4, "box", 0.0, "area")
    spec_center = PreprocessSpec(4, 4, "center", 0.0, "area")
    assert region_box((30, 60, 3), spec_box, None) == (0, 0, 59, 29)
    assert region_box((30, 60, 3), spec_center, None) == (15, 0, 44, 29)


@pytest.mark.parametrize("options, message", [
    ({"crop": "middle"}, "crop must be one of"),
    ({"resize": "nearest"}, "resize must be one of"),
    ({"box_margin": -0.1}, "box_margin"),
])
def test_bad_spec_names_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        PreprocessSpec(height=8, width=8, **options)


def test_crop_rejects_grey_frames_and_boxes_outside():
    spec = PreprocessSpec(8, 8)
    with pytest.raises(ValueError, match="BGR uint8 frame"):
        crop_region(np.zeros((10, 10), np.uint8), spec)
    with pytest.raises(ValueError, match="x2 >= x1"):
        crop_region(np.zeros((10, 10, 3), np.uint8), spec, (5, 5, 2, 2))


def test_crop_region_writes_into_a_given_buffer_in_place():
    from edgesight.runtime.preprocess import PreprocessSpec, crop_region

    frame = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    spec = PreprocessSpec(height=8, width=8, crop="box", box_margin=0.1, resize="linear")
    buffer = np.zeros((1, 8, 8, 3), np.uint8)
    written = crop_region(frame, spec, (10, 20, 50, 60), out=buffer[0])
    assert np.shares_memory(written, buffer)
    np.testing.assert_array_equal(buffer[0], crop_region(frame, spec, (10, 20, 50, 60)))


@pytest.mark.parametrize("resize", ["area", "linear", "cubic"])
def test_a_batch_of_boxes_is_each_box_cropped_alone(resize):
    from edgesight.runtime.preprocess import crop_regions

    frame = np.random.default_rng(4).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    spec = PreprocessSpec(height=12, width=10, crop="box", box_margin=0.1, resize=resize)
    boxes = [(10, 20, 50, 60), (0, 0, 3, 3), (150, 110, 159, 119), (40, 40, 40, 40), (0, 0, 159, 119)]  # edges, a pixel
    batch = crop_regions(frame, spec, boxes)
    np.testing.assert_array_equal(batch, np.stack([crop_region(frame, spec, box) for box in boxes]))
    assert crop_regions(frame, spec, []).shape == (0, 12, 10, 3)
    with pytest.raises(ValueError, match=r"x2 >= x1 and y2 >= y1. Received: box_xyxy=\(5, 5, 2, 2\)"):
        crop_regions(frame, spec, [(10, 20, 50, 60), (5, 5, 2, 2)])
    with pytest.raises(ValueError, match=r"box lies outside the frame 160x120. Received: box_xyxy=\(200, 10, 220, 30\)"):
        crop_regions(frame, spec, [(200, 10, 220, 30)])
    with pytest.raises(ValueError, match="BGR uint8 frame"):
        crop_regions(frame[..., 0], spec, boxes)
