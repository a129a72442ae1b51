"""Command-line options generated from the frozen config dataclasses, their one home."""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing


def _base_type(kind):
    """int for `int | None`; the element type for `list[str]`."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if typing.get_origin(kind) is list:
        return typing.get_args(kind)[0], True
    return kind, False


def add_config_arguments(parser: argparse.ArgumentParser, config_class: type, positional: tuple[str, ...] = ()) -> None:
    """One option per dataclass field: --field-name with the field's type, default and help."""
    hints = typing.get_type_hints(config_class)
    for item in dataclasses.fields(config_class):
        kind, is_list = _base_type(hints[item.name])
        help_text = item.metadata.get("help", "")
        if item.name in positional:
            parser.add_argument(item.name, type=kind, nargs="+" if is_list else None, help=help_text)
        elif kind is bool:
            parser.add_argument(f"--{item.name.replace('_', '-')}", dest=item.name, action="store_true", help=help_text)
        else:
            has_factory = item.default_factory is not dataclasses.MISSING
            required = item.default is dataclasses.MISSING and not has_factory
            default = item.default_factory() if has_factory else None if required else item.default
            parser.add_argument(
                f"--{item.name.replace('_', '-')}", dest=item.name, type=kind, default=default,
                nargs="+" if is_list else None, required=required,
                help=help_text + ("" if required or default is None else f" (default: {default})"),
            )


def config_from_arguments(config_class: type, arguments: argparse.Namespace):
    names = {item.name for item in dataclasses.fields(config_class)}
    return config_class(**{name: value for name, value in vars(arguments).items() if name in names})
