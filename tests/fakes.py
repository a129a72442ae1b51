"""Tiny data in the real formats: GTSRB-layout archives, a video, an edgesight ONNX model built with onnx.helper,
and loopback cameras (HTTP MJPEG, RTSP H.264)."""
from __future__ import annotations

import base64
import contextlib
import io
import itertools
import re
import socket
import struct
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from edgesight.runtime.datasets import GTSRB_CLASS_NAMES
from edgesight.runtime.metadata import ModelMetadata
from edgesight.runtime.preprocess import PreprocessSpec

# Distinct colour and shape per class, so that a tiny model can tell them apart in a few epochs.
CLASS_STYLES = {
    1: ((40, 40, 220), "circle"),
    14: ((40, 40, 200), "octagon"),
    17: ((220, 220, 220), "square"),
    38: ((200, 80, 20), "triangle"),
}
HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"


def sign_image(class_id: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A noisy background with a coloured shape; returns the BGR image and its inclusive ROI."""
    side = int(rng.integers(26, 44))
    image = rng.integers(60, 140, (side, side, 3), dtype=np.uint8)
    margin = max(2, side // 8)
    x1, y1, x2, y2 = margin, margin, side - 1 - margin, side - 1 - margin
    color, shape = CLASS_STYLES[class_id]
    centre, radius = ((x1 + x2) // 2, (y1 + y2) // 2), (x2 - x1) // 2
    if shape == "circle":
        cv2.circle(image, centre, radius, color, -1)
    elif shape == "square":
        cv2.rectangle(image, (x1, y1), (x2, y2), color, -1)
    else:
        corners = 3 if shape == "triangle" else 8
        angles = np.linspace(0, 2 * np.pi, corners, endpoint=False) - np.pi / 2
        points = np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(image, [points], color)
    return image, (x1, y1, x2, y2)


def _csv_line(name: str, image: np.ndarray, roi, class_id: int | None) -> str:
    fields = [name, str(image.shape[1]), str(image.shape[0]), *map(str, roi)]
    return ";".join(fields + ([str(class_id)] if class_id is not None else []))


def write_gtsrb_archives(folder: Path, tracks: int = 3, frames: int = 6, test_per_class: int = 6, seed: int = 0,
                         extension: str = ".png") -> Path:
    """The three official GTSRB zips, in the official inner layout, with a few generated images per class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "GTSRB_Final_Training_Images.zip", "w") as archive:
        for class_id in CLASS_STYLES:
            prefix = f"GTSRB/Final_Training/Images/{class_id:05d}"
            lines = [HEADER]
            for track in range(tracks):
                for frame in range(frames):
                    image, roi = sign_image(class_id, rng)
                    name = f"{track:05d}_{frame:05d}{extension}"
                    archive.writestr(f"{prefix}/{name}", cv2.imencode(extension, image)[1].tobytes())
                    lines.append(_csv_line(name, image, roi, class_id))
            archive.writestr(f"{prefix}/GT-{class_id:05d}.csv", "\n".join(lines) + "\n")
    test_lines, truth_lines = [HEADER.rsplit(";", 1)[0]], [HEADER]
    with zipfile.ZipFile(folder / "GTSRB_Final_Test_Images.zip", "w") as archive:
        index = 0
        for class_id in CLASS_STYLES:
            for _ in range(test_per_class):
                image, roi = sign_image(class_id, rng)
                name = f"{index:05d}{extension}"
                archive.writestr(f"GTSRB/Final_Test/Images/{name}", cv2.imencode(extension, image)[1].tobytes())
                test_lines.append(_csv_line(name, image, roi, None))
                truth_lines.append(_csv_line(name, image, roi, class_id))
                index += 1
        archive.writestr("GTSRB/Final_Test/Images/GT-final_test.test.csv", "\n".join(test_lines) + "\n")
    with zipfile.ZipFile(folder / "GTSRB_Final_Test_GT.zip", "w") as archive:
        archive.writestr("GT-final_test.csv", "\n".join(truth_lines) + "\n")
    return folder


def write_video(path: Path, frames: int = 30, size: tuple[int, int] = (160, 120), fps: float = 15.0) -> Path:
    """An MP4 whose frame i shows a sign shape on a background of brightness i (so frames are tellable apart)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    rng = np.random.default_rng(1)
    for index in range(frames):
        frame = np.full((size[1], size[0], 3), (index * 7) % 256, np.uint8)
        sign, _ = sign_image(list(CLASS_STYLES)[index % len(CLASS_STYLES)], rng)
        y, x = (size[1] - sign.shape[0]) // 2, (size[0] - sign.shape[1]) // 2
        frame[y:y + sign.shape[0], x:x + sign.shape[1]] = sign
        writer.write(frame)
    writer.release()
    return path


def tiny_model_proto(labels=GTSRB_CLASS_NAMES, size: int = 8, seed: int = 0, metadata: bool = True, crop: str = "box"):
    """A real edgesight model file in miniature: uint8 NHWC in, Cast, scale, linear layer, Softmax out.

    Returns (model_proto, weights, bias) so tests can compute the expected output with numpy.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    features = size * size * 3
    weights = rng.normal(0, 0.5, (features, len(labels))).astype(np.float32)
    bias = rng.normal(0, 0.1, len(labels)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["image"], ["image_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["image_float", "scale"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "flat_shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "weights", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    initializers = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
        numpy_helper.from_array(np.array([-1, features], np.int64), "flat_shape"),
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(bias, "bias"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(labels)])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        spec = PreprocessSpec(height=size, width=size, crop=crop, box_margin=0.1, resize="area")
        for key, value in ModelMetadata("gtsrb", tuple(labels), "image", spec).to_props().items():
            model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model, weights, bias


def write_tiny_model(path: Path, **options) -> Path:
    import onnx

    onnx.save(tiny_model_proto(**options)[0], path)
    return path


def expected_probabilities(batch_nhwc: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = batch_nhwc.reshape(len(batch_nhwc), -1).astype(np.float32) / 255 @ weights + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def road_scene(seed: int, signs: list[tuple[int, int, int]]) -> np.ndarray:
    """A grey, noisy 320x200 scene with red rings (x, y, radius) on white discs, as a prohibition sign looks."""
    image = np.random.default_rng(seed).integers(90, 130, (200, 320, 3), dtype=np.uint8)
    for x, y, radius in signs:
        cv2.circle(image, (x, y), radius, (255, 255, 255), -1)
        cv2.circle(image, (x, y), radius, (0, 0, 220), max(2, radius // 5))
    return image


def write_road_scenes(path: Path, truth_class: int = 2) -> Path:
    """Three road scenes in the GTSDB layout inside a zip: one sign, none, two (speed limit 50, class 2).

    truth_class: the class gt.txt gives those signs; another one makes every reading of them wrong.
    """
    images = {"00000.jpg": road_scene(0, [(80, 60, 20)]), "00001.jpg": road_scene(1, []),
              "00002.jpg": road_scene(2, [(200, 120, 30), (60, 150, 14)])}
    truth = "".join(f"{name};{box};{truth_class}\n" for name, box in (("00000.jpg", "60;40;100;80"), ("00002.jpg", "170;90;230;150"),
                                                                        ("00002.jpg", "46;136;74;164")))
    members = {f"FullIJCNN2013/{name}": cv2.imencode(".jpg", image)[1].tobytes() for name, image in images.items()}
    members["FullIJCNN2013/gt.txt"] = truth.encode()
    members["FullIJCNN2013/ReadMe.txt"] = b"not a scene"
    path.write_bytes(zip_bytes(members))
    return path


class MjpegServer:
    """A loopback HTTP MJPEG stream (multipart/x-mixed-replace, as IP cameras serve it) of generated frames.

    Frame n is uniformly grey n mod 256, so a reader can tell frames apart. stop() closes every
    connection, as a camera that drops off the network does; start() serves again on the same port,
    with another frame size if asked.
    """

    def __init__(self, size: tuple[int, int] = (160, 120), fps: float = 30.0):
        self.size, self.fps, self.port = size, fps, 0
        self._serving = threading.Event()
        self._server = None

    def start(self, size: tuple[int, int] | None = None) -> MjpegServer:
        import http.server

        self.size = size or self.size
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                try:
                    while owner._serving.is_set():
                        image = np.full((owner.size[1], owner.size[0], 3), index % 256, np.uint8)
                        data = cv2.imencode(".jpg", image)[1].tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data) + data + b"\r\n")
                        index += 1
                        time.sleep(1.0 / owner.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._serving.set()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def stop(self) -> None:
        self._serving.clear()  # open connections end at their next frame
        self._server.shutdown()
        self._server.server_close()


def interrupt_after_first_epoch(monkeypatch):
    """Make training stop (KeyboardInterrupt) right after epoch 1 is checkpointed; returns the undo."""
    from edgesight.train import checkpoint as checkpoint_module

    original = checkpoint_module.EpochCheckpoint.on_epoch_end

    def interrupted(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.EpochCheckpoint, "on_epoch_end", interrupted)
    return lambda: monkeypatch.setattr(checkpoint_module.EpochCheckpoint, "on_epoch_end", original)


def h264_frames(count: int, size: tuple[int, int], fps: int) -> list[list[bytes]]:
    """The NAL units of each of `count` H.264 frames (libx264 through PyAV); frame n is grey (n * 8) mod 256.

    Frame 0 is the only keyframe and carries the SPS and PPS, so a stream that starts over at frame 0
    can be joined by a new reader.
    """
    import fractions

    import av

    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = size[0], size[1], "yuv420p"
    encoder.time_base = fractions.Fraction(1, fps)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(count), "bf": "0"}
    packets = []
    for index in range(count):
        image = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), index * 8 % 256, np.uint8), format="bgr24")
        image.pts = index
        packets += encoder.encode(image)
    packets += encoder.encode(None)
    return [[unit for unit in re.split(b"\x00\x00\x00\x01|\x00\x00\x01", bytes(packet)) if unit] for packet in packets]


def rtp_h264_payloads(units: list[bytes], most: int = 1400) -> list[bytes]:
    """RTP payloads of one frame's NAL units (RFC 6184): a small unit whole, a large one in FU-A fragments."""
    payloads = []
    for unit in units:
        if len(unit) <= most:
            payloads.append(unit)
            continue
        indicator, kind, body = unit[0] & 0xE0 | 28, unit[0] & 0x1F, unit[1:]
        for start in range(0, len(body), most):
            flags = (0x80 if start == 0 else 0) | (0x40 if start + most >= len(body) else 0)  # start, end
            payloads.append(bytes([indicator, flags | kind]) + body[start:start + most])
    return payloads


class RtspServer:
    """A loopback RTSP camera serving generated H.264 frames over RTP interleaved in the TCP connection.

    Enough of RFC 2326 and RFC 6184 for FFmpeg's client: OPTIONS, DESCRIBE (SDP with the parameter
    sets), SETUP (TCP only: a UDP request gets 461, as from cameras behind NAT, and FFmpeg retries
    over TCP), PLAY, TEARDOWN. Each reader gets the frames from the keyframe on, looped.
    stop() and start() as for MjpegServer.
    """

    def __init__(self, size: tuple[int, int] = (160, 120), fps: int = 30, frames: int = 30):
        self.size, self.fps, self.frames, self.port = size, fps, frames, 0
        self._serving = threading.Event()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []

    def start(self, size: tuple[int, int] | None = None) -> RtspServer:
        self.size = size or self.size
        self._units = h264_frames(self.frames, self.size, self.fps)
        self._listener = socket.create_server(("127.0.0.1", self.port))  # sets SO_REUSEADDR: the port is free again at once
        self.port = self._listener.getsockname()[1]
        self._serving.set()
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def stop(self) -> None:
        self._serving.clear()
        for connection in [self._listener, *self._connections]:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._connections = []

    def _accept(self) -> None:
        while self._serving.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._session, args=(connection,), daemon=True).start()

    def _session(self, connection: socket.socket) -> None:
        send_lock = threading.Lock()
        requests = connection.makefile("rb")
        try:
            while self._serving.is_set():
                head = []
                while (line := requests.readline()) not in (b"\r\n", b"\n", b""):
                    head.append(line.decode().strip())
                if not head:
                    return
                fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
                method = head[0].split()[0]
                if int(fields.get("Content-Length", 0)):
                    requests.read(int(fields["Content-Length"]))
                status, headers, body = self._answer(method, fields)
                reply = f"RTSP/1.0 {status}\r\nCSeq: {fields.get('CSeq', '0')}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                with send_lock:
                    connection.sendall(f"{reply}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                if method == "PLAY":
                    threading.Thread(target=self._play, args=(connection, send_lock), daemon=True).start()
                if method == "TEARDOWN":
                    return
        except OSError:
            pass
        finally:
            connection.close()

    def _answer(self, method: str, fields: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
        session = {"Session": "edgesight"}
        if method == "OPTIONS":
            return "200 OK", {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"}, b""
        if method == "DESCRIBE":
            sps, pps = (base64.b64encode(unit).decode() for unit in self._units[0] if unit[0] & 0x1F in (7, 8))
            sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=edgesight test camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                   "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                   f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sps},{pps}\r\na=control:track0\r\n")
            return "200 OK", {"Content-Type": "application/sdp", "Content-Base": f"{self.url}/"}, sdp.encode()
        if method == "SETUP":
            if "TCP" not in fields.get("Transport", ""):
                return "461 Unsupported Transport", {}, b""
            return "200 OK", session | {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}, b""
        if method in ("PLAY", "TEARDOWN", "GET_PARAMETER"):
            return "200 OK", session, b""
        return "501 Not Implemented", {}, b""

    def _play(self, connection: socket.socket, send_lock: threading.Lock) -> None:
        sequence, tick = 0, 90_000 // self.fps
        try:
            for index in itertools.count():
                if not self._serving.is_set():
                    return
                payloads = rtp_h264_payloads(self._units[index % len(self._units)])
                for number, packet in enumerate(payloads):
                    marker = 0x80 if number == len(payloads) - 1 else 0  # the frame's last packet
                    header = struct.pack("!BBHII", 0x80, marker | 96, sequence & 0xFFFF, index * tick & 0xFFFFFFFF, 0xED6E)
                    sequence += 1
                    with send_lock:
                        connection.sendall(b"$\x00" + struct.pack("!H", len(header) + len(packet)) + header + packet)
                time.sleep(1.0 / self.fps)
        except OSError:
            pass


def image_stem_graph(opset: int = 17, dilations=(1, 1), pads=(0, 0, 1, 1)):
    """An ONNX graph: a uint8 NHWC image -> Transpose -> Cast -> 3x3 stride-2 Conv (16 channels) -> Relu, as
    export/simplify.fold_input_scaling leaves a locator's stem (pads: top, left, bottom, right)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Cast", ["nchw"], ["float"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["float", "kernel", "bias"], ["convolved"], kernel_shape=[3, 3], strides=[2, 2], pads=list(pads),
                              dilations=list(dilations)),
             helper.make_node("Relu", ["convolved"], ["stem"])]
    graph = helper.make_graph(nodes, "stem", [helper.make_tensor_value_info("image", TensorProto.UINT8, ["n", "h", "w", 3])],
                              [helper.make_tensor_value_info("stem", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(rng.normal(size=(16, 3, 3, 3)).astype(np.float32), "kernel"),
                               numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "bias")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
