import json

import numpy as np
import onnx
import pytest
from edgesight.runtime import Classifier, ModelFileError
from edgesight.runtime.datasets import GTSRB_CLASS_NAMES
from edgesight.runtime.preprocess import crop_region
from fakes import expected_probabilities, tiny_model_proto


def test_probabilities_match_the_graph_computed_with_numpy(tmp_path):
    model, weights, bias = tiny_model_proto()
    onnx.save(model, tmp_path / "m.onnx")
    classifier = Classifier(tmp_path / "m.onnx", threads=1)
    batch = np.random.default_rng(3).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(classifier.probabilities(batch), expected_probabilities(batch, weights, bias), rtol=1e-5, atol=1e-6)


def test_classify_boxes_is_one_batch_with_top_k_best_first(tmp_path):
    model, weights, bias = tiny_model_proto()
    onnx.save(model, tmp_path / "m.onnx")
    classifier = Classifier(tmp_path / "m.onnx", max_batch=2)  # forces chunking of the 3 boxes
    frame = np.random.default_rng(4).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    boxes = [(0, 0, 19, 19), (30, 10, 59, 39), (50, 30, 79, 59)]
    results = classifier.classify_boxes(frame, boxes, top_k=3)
    expected = expected_probabilities(np.stack([crop_region(frame, classifier.spec, b) for b in boxes]), weights, bias)
    for row, predictions in zip(expected, results):
        assert [p.class_id for p in predictions] == list(np.argsort(-row)[:3])
        assert predictions[0].label == GTSRB_CLASS_NAMES[predictions[0].class_id]
        assert predictions[0].score == pytest.approx(row.max(), rel=1e-5)
        assert predictions[0].score >= predictions[1].score >= predictions[2].score


def test_classify_frames_and_single_frame_agree(tiny_model):
    classifier = Classifier(tiny_model)
    frames = [np.full((20, 30, 3), v, np.uint8) for v in (0, 128, 255)]
    batched = classifier.classify_frames(frames, top_k=1)
    assert [b[0].class_id for b in batched] == [classifier.classify(f)[0].class_id for f in frames]


def test_missing_corrupt_and_foreign_files_get_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        Classifier(tmp_path / "absent.onnx")
    (tmp_path / "corrupt.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelFileError, match=r"corrupt\.onnx: not a loadable ONNX model"):
        Classifier(tmp_path / "corrupt.onnx")
    onnx.save(tiny_model_proto(metadata=False)[0], tmp_path / "foreign.onnx")
    with pytest.raises(ModelFileError, match="not an edgesight model file"):
        Classifier(tmp_path / "foreign.onnx")


def _with_prop(tmp_path, key, value):
    model = tiny_model_proto()[0]
    for entry in model.metadata_props:
        if entry.key == key:
            entry.value = value
    onnx.save(model, tmp_path / "edited.onnx")
    return tmp_path / "edited.onnx"


def test_label_count_must_match_output_width(tmp_path):
    path = _with_prop(tmp_path, "edgesight.labels", json.dumps(["a", "b"]))
    with pytest.raises(ModelFileError, match="output must be \\[batch, 2\\]"):
        Classifier(path)


def test_metadata_must_be_json_and_follow_the_contract(tmp_path):
    with pytest.raises(ModelFileError, match="edgesight.labels is not valid JSON"):
        Classifier(_with_prop(tmp_path, "edgesight.labels", "['a', 'b']"))  # str() of a list, not JSON
    with pytest.raises(ModelFileError, match="input.color must be 'RGB'"):
        bad_input = {"name": "image", "height": 8, "width": 8, "channels": 3, "layout": "NHWC", "color": "BGR", "dtype": "uint8"}
        Classifier(_with_prop(tmp_path, "edgesight.input", json.dumps(bad_input)))
    with pytest.raises(ModelFileError, match="metadata format 2 is not supported"):
        Classifier(_with_prop(tmp_path, "edgesight.format", "2"))


def test_input_size_must_match_metadata(tmp_path):
    bad_input = {"name": "image", "height": 16, "width": 16, "channels": 3, "layout": "NHWC", "color": "RGB", "dtype": "uint8"}
    with pytest.raises(ModelFileError, match="input must be uint8 \\[batch, 16, 16, 3\\]"):
        Classifier(_with_prop(tmp_path, "edgesight.input", json.dumps(bad_input)))


def test_wrong_batch_shape_is_refused(tiny_model):
    with pytest.raises(ValueError, match="expected a uint8 batch"):
        Classifier(tiny_model).probabilities(np.zeros((1, 8, 8, 3), np.float32))


def test_single_region_path_returns_what_a_batch_returns_in_its_own_array(tiny_model):
    from concurrent.futures import ThreadPoolExecutor

    classifier = Classifier(tiny_model, threads=1)
    batch = np.random.default_rng(3).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    together = classifier.probabilities(batch)
    one_by_one = [classifier.probabilities(image[None]) for image in batch]
    np.testing.assert_allclose(np.concatenate(one_by_one), together, rtol=1e-6)
    assert one_by_one[0] is not one_by_one[1] and not np.shares_memory(one_by_one[0], one_by_one[1])
    with ThreadPoolExecutor(4) as pool:  # the bound buffers are shared; results must not mix
        concurrent = list(pool.map(lambda index: classifier.probabilities(batch[index : index + 1]), [i % 8 for i in range(400)]))
    np.testing.assert_allclose(np.concatenate(concurrent), together[[i % 8 for i in range(400)]], rtol=1e-6)


@pytest.mark.parametrize("top_k", [1, 2])
def test_one_box_path_reads_what_the_batch_path_reads_even_from_many_threads(tiny_model, top_k):
    from concurrent.futures import ThreadPoolExecutor

    classifier = Classifier(tiny_model, threads=1)
    frame = np.random.default_rng(4).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = [(10 + 7 * i, 5 + 3 * i, 60 + 7 * i, 55 + 3 * i) for i in range(8)]
    batch = classifier.classify_boxes(frame, boxes, top_k=top_k)  # more than one box: the batch path
    with ThreadPoolExecutor(4) as pool:
        single = list(pool.map(lambda index: classifier.classify_boxes(frame, [boxes[index % 8]], top_k=top_k)[0], range(200)))
    for index, predictions in enumerate(single):
        expected = batch[index % 8]
        assert len(predictions) == top_k and [p.class_id for p in predictions] == [p.class_id for p in expected]
        assert [p.label for p in predictions] == [p.label for p in expected]
        np.testing.assert_allclose([p.score for p in predictions], [p.score for p in expected], rtol=1e-5)


def test_predict_takes_folders_of_images_in_name_order_and_refuses_top_k_below_one(tmp_path, tiny_model):
    import cv2
    from edgesight.runtime.predict import PredictConfig, predict

    folder = tmp_path / "shots"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (24, 30, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    single = tmp_path / "single.png"
    cv2.imwrite(str(single), rng.integers(0, 256, (24, 30, 3), dtype=np.uint8))
    records = predict(PredictConfig(model=str(tiny_model), images=[str(single), str(folder)], jsonl=True))
    assert [record["source"] for record in records] == [str(single), str(folder / "a.jpg"), str(folder / "b.png")]
    with pytest.raises(ValueError, match="top_k must be >= 1. Received: top_k=0"):
        predict(PredictConfig(model=str(tiny_model), images=[str(single)], top_k=0))


def test_predict_refuses_missing_files_up_front_and_skips_unreadable_ones_only_when_asked(tmp_path, tiny_model, capsys):
    import cv2
    from edgesight.runtime.errors import SourceError
    from edgesight.runtime.predict import PredictConfig, predict

    good, broken = tmp_path / "good.png", tmp_path / "broken.jpg"
    cv2.imwrite(str(good), np.zeros((24, 30, 3), np.uint8))
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match=f"no such image file: {tmp_path / 'gone.png'}"):
        predict(PredictConfig(model=str(tiny_model), images=[str(good), str(tmp_path / "gone.png")], jsonl=True))
    assert capsys.readouterr().out == ""  # nothing classified before the refusal
    with pytest.raises(SourceError, match="broken.jpg: not a readable image. Pass --skip-bad-images"):
        predict(PredictConfig(model=str(tiny_model), images=[str(broken), str(good)], jsonl=True))
    records = predict(PredictConfig(model=str(tiny_model), images=[str(broken), str(good)], jsonl=True, skip_bad_images=True))
    assert [(record["frame"], record["source"]) for record in records] == [(0, str(good))]
    assert f"edgesight: skipped {broken}: not a readable image." in capsys.readouterr().err


def test_predict_given_a_video_says_that_demo_classifies_its_frames(tmp_path, tiny_model, tiny_video):
    from edgesight.runtime.errors import SourceError
    from edgesight.runtime.predict import PredictConfig, predict

    with pytest.raises(SourceError, match=rf"clip\.mp4: a video, not an image \(`edgesight demo --source {tiny_video} "
                                          r"--jsonl FILE` classifies each of its frames\)"):
        predict(PredictConfig(model=str(tiny_model), images=[str(tiny_video)]))
    renamed = tmp_path / "clip.png"  # named as an image: a broken image, as FFmpeg is not asked
    renamed.write_bytes(tiny_video.read_bytes())
    with pytest.raises(SourceError, match="clip.png: not a readable image"):
        predict(PredictConfig(model=str(tiny_model), images=[str(renamed)]))
