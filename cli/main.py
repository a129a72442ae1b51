"""The `edgesight` console script: each subcommand is a thin shell over a plain Python function."""
from __future__ import annotations

import argparse
import sys

from edgesight.runtime.errors import EdgesightError

from .options import add_config_arguments, config_from_arguments


def _train(arguments: argparse.Namespace) -> int:
    try:
        from edgesight.train.config import TrainConfig
        from edgesight.train.trainer import train
    except ImportError as error:
        raise SystemExit(f"edgesight train needs the [train] extra: pip install 'edgesight[train]' ({error})")
    train(config_from_arguments(TrainConfig, arguments))
    return 0


def _train_parser(subparsers) -> None:
    from edgesight.train.config import TrainConfig

    parser = subparsers.add_parser("train", help="train a model on a task's dataset")
    add_config_arguments(parser, TrainConfig)
    parser.set_defaults(handler=_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgesight", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _train_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.handler(arguments)
    except EdgesightError as error:
        print(f"edgesight {arguments.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgesight {arguments.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
