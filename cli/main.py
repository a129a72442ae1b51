"""edgesight: train a compact CNN, export it to ONNX fp32/int8, classify camera frames.

Each subcommand is a thin shell over a plain Python function taking a config dataclass of the
same options, so every step is scriptable from Python as well.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass

from edgesight.runtime.errors import EdgesightError

from .options import add_config_arguments, config_from_arguments


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    config: str  # "module:Class" — light modules, importable with the base install
    function: str  # "module:function" — may need an extra, imported only when run
    extra: str | None  # the pip extra the function needs
    positional: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # modules of that extra, checked before any work starts


SUBCOMMANDS = (
    Subcommand("train", "train a model on a task's dataset", "edgesight.train.config:TrainConfig",
               "edgesight.train.trainer:train", "train", requires=("tensorflow", "keras", "matplotlib")),
    Subcommand("train-locator", "train the learned sign locator on road scenes (and GTSRB signs pasted into them)",
               "edgesight.train.config:LocatorTrainConfig", "edgesight.train.locator:train_locator", "train",
               requires=("tensorflow", "keras")),
    Subcommand("export", "convert a run to ONNX fp32 and int8, check and measure both", "edgesight.export.config:ExportConfig",
               "edgesight.export.pipeline:export_run", "export", ("run_dir",), requires=("tensorflow", "tf2onnx", "onnx")),
    Subcommand("eval", "accuracy of a model file on its task's official test split", "edgesight.runtime.evaluate:EvalConfig",
               "edgesight.runtime.evaluate:evaluate", None, ("model",)),
    Subcommand("eval-frames", "find and read the signs in road scenes with ground truth (GTSDB layout): recall, precision, speed",
               "edgesight.runtime.frame_eval:EvalFramesConfig", "edgesight.runtime.frame_eval:evaluate_frames", None, ("model",)),
    Subcommand("bench", "accuracy, latency, throughput, size, memory of a model against its peers on this machine",
               "edgesight.export.bench:BenchConfig", "edgesight.export.bench:bench", None, ("models",)),
    Subcommand("predict", "classify image files, each as one region (to find and read every sign in road scenes: "
                          "demo --source FOLDER --locate signs --no-window --jsonl -)", "edgesight.runtime.predict:PredictConfig",
               "edgesight.runtime.predict:predict", None, ("model", "images")),
    Subcommand("demo", "live loop on a camera, video, stream or image folder", "edgesight.camera_demo.loop:DemoConfig",
               "edgesight.camera_demo.loop:run_demo", None),
)


def _load(reference: str):
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgesight", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"edgesight {importlib.metadata.version('edgesight')}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        add_config_arguments(sub, _load(command.config), command.positional)
        sub.set_defaults(subcommand=command)
    return parser


SIGPIPE_STATUS = 128 + 13  # what a shell reports for a process ended by SIGPIPE


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    command: Subcommand = arguments.subcommand
    # TensorFlow's C++ start-up info and warnings drown the progress output; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    config = config_from_arguments(_load(command.config), arguments)
    missing = [module for module in command.requires if importlib.util.find_spec(module) is None]
    if missing:
        print(f"edgesight {command.name}: needs the [{command.extra}] extra (missing: {', '.join(missing)}): "
              f"pip install 'edgesight[{command.extra}]'", file=sys.stderr)
        return 3
    function = _load(command.function)
    try:
        function(config)
    except BrokenPipeError:
        # Standard output's reader went away (`edgesight demo --jsonl - | head`): end quietly with SIGPIPE's status, as
        # Unix tools do; the demo's camera and files were closed on the way out. Python's own flush of stdout at exit
        # would fail again, so what is left of it goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_STATUS
    except (EdgesightError, ValueError, OSError) as error:  # OSError names the file it could not read or write
        print(f"edgesight {command.name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgesight {command.name}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
