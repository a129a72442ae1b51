"""The demo on a live camera stream of road scenes: latency from capture to result at each thread setting.

A camera is not a file: its frames come at the camera's rate whether or not the loop is ready, and the reader thread
that decodes them shares the cores with the sign finder. This serves road scenes (GTSDB layout, JPEG-encoded once) as
an HTTP MJPEG stream at a fixed rate from a process of its own, as an IP camera would, and runs `edgesight demo` on it
(`run_demo`: reader thread, locators, screen, reader, tracker, JSON records) for each thread setting in turn, in
alternating rounds so the host's noise falls on all of them alike. Reports the demo's own figures per run: frames/s,
classification latency (median, p95) and capture-to-result latency (median, p99).

    python benchmarks/live_stream.py --scenes scenes-100-199.zip --fps 25 --frames 300 --threads 1 2 --out benchmarks/results/DATE-live-stream
"""
from __future__ import annotations

import argparse
import http.server
import multiprocessing
import socket
import time
from pathlib import Path

import cv2
import numpy as np
from edgesight.camera_demo.loop import DemoConfig, run_demo
from edgesight.runtime.bench import machine_description
from edgesight.runtime.files import make_folder, write_json_atomic, write_text_atomic
from edgesight.runtime.scenes import read_scenes

FIGURES = ("fps", "latency_ms_median", "latency_ms_p95", "end_to_end_ms_median", "end_to_end_ms_p99")


def serve_scenes(scenes: str, fps: float, port: int) -> None:
    """Every scene in turn, looping, as multipart JPEG frames at `fps` to each client (a process's whole work)."""
    frames = [cv2.imencode(".jpg", scene.image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for scene in read_scenes(scenes)]

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            started, sent = time.monotonic(), 0
            try:
                while True:
                    data = frames[sent % len(frames)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data) + data + b"\r\n")
                    sent += 1
                    time.sleep(max(0.0, started + sent / fps - time.monotonic()))  # the camera's clock, not the reader's
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Camera).serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the scene stream on port {port} did not start within {seconds:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", required=True, help="road scenes in the GTSDB layout (folder or .zip)")
    parser.add_argument("--fps", type=float, default=25.0, help="the camera's frame rate")
    parser.add_argument("--frames", type=int, default=300, help="frames per demo run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread settings to compare")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds over the thread settings")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    make_folder(arguments.out, f"--out {arguments.out}")  # before minutes of runs

    port = free_port()
    camera = multiprocessing.get_context("spawn").Process(target=serve_scenes, args=(arguments.scenes, arguments.fps, port), daemon=True)
    camera.start()
    try:
        wait_for(port)
        runs = []
        for round_index in range(arguments.rounds):
            for threads in arguments.threads:
                summary = run_demo(DemoConfig(source=f"http://127.0.0.1:{port}/stream.mjpg", no_window=True,
                                              max_frames=arguments.frames, threads=threads))
                runs.append({"round": round_index + 1, "threads": threads} | {name: getattr(summary, name) for name in FIGURES})
                print(runs[-1], flush=True)
    finally:
        camera.terminate()

    medians = {threads: {name: float(np.median([run[name] for run in runs if run["threads"] == threads])) for name in FIGURES}
               for threads in arguments.threads}
    machine = machine_description()
    lines = [f"Machine: {machine}. Stream: {arguments.scenes} as MJPEG at {arguments.fps:g} frames/s, {arguments.frames} "
             f"frames a run, {arguments.rounds} alternating rounds; medians over the rounds.", "",
             "| threads | frames/s | latency ms, median | p95 | capture to result ms, median | p99 |", "|---|---|---|---|---|---|"]
    lines += [f"| {threads} | {row['fps']:.1f} | {row['latency_ms_median']:.2f} | {row['latency_ms_p95']:.2f} | "
              f"{row['end_to_end_ms_median']:.1f} | {row['end_to_end_ms_p99']:.1f} |" for threads, row in medians.items()]
    write_json_atomic(arguments.out / "live_stream.json", {"machine": machine, "config": {k: str(v) for k, v in vars(arguments).items()},
                                                           "runs": runs, "medians": {str(k): v for k, v in medians.items()}})
    write_text_atomic(arguments.out / "live_stream.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
