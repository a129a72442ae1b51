"""Command-line options generated from the frozen config dataclasses, their one home."""
from __future__ import annotations

import argparse
import dataclasses
import typing


def add_config_arguments(parser: argparse.ArgumentParser, config_class: type, positional: tuple[str, ...] = ()) -> None:
    """One option per dataclass field: --field-name with the field's type, default and help."""
    hints = typing.get_type_hints(config_class)
    for item in dataclasses.fields(config_class):
        kind = hints[item.name]
        help_text = item.metadata.get("help", "")
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if item.name in positional:
            parser.add_argument(item.name, type=kind, help=help_text)
        elif kind is bool:
            parser.add_argument(f"--{item.name.replace('_', '-')}", dest=item.name, action="store_true", help=help_text)
        else:
            default = None if required else item.default
            suffix = "" if required else f" (default: {default})"
            parser.add_argument(
                f"--{item.name.replace('_', '-')}", dest=item.name, type=_argument_type(kind), default=default,
                required=required, help=help_text + suffix,
            )


def _argument_type(kind):
    if typing.get_origin(kind) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return inner[0]
    return kind


def config_from_arguments(config_class: type, arguments: argparse.Namespace):
    names = {item.name for item in dataclasses.fields(config_class)}
    return config_class(**{name: value for name, value in vars(arguments).items() if name in names})
