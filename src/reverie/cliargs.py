"""Turn a frozen config dataclass into an argparse parser, with one-line errors.

Field docstrings (a string literal under the field, as in ``CollectConfig``) become ``--help``
text; ``foo_bar`` becomes ``--foo-bar``; ``bool`` fields get ``--flag/--no-flag``; ``X | None``
fields accept ``none``. A field whose type is itself a dataclass (``planning: PlannerOptions``)
contributes its fields as top-level flags (``--samples``), with the field's default instance
giving their defaults. Values are validated by the dataclasses' own ``__post_init__``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad value as a single line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each annotated field of ``cls`` (attribute docstrings)."""
    docs: dict[str, str] = {}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return docs
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _converter(tp: Any) -> tuple[Any, list[Any] | None, bool]:
    """(callable that parses a string, choices or None, whether None is allowed)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    optional = False
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        tp = rest[0]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return type(args[0]), list(args), optional
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return ("tuple", args[0]), None, optional
    if tp in (int, float, str):
        return tp, None, optional
    if tp is Path:
        return Path, None, optional
    raise TypeError(f"unsupported config field type {tp!r}")


def build_parser(cls: type, prog: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=description or (cls.__doc__ or "").strip())
    _add_fields(parser, cls, prefix="")
    return parser


def _add_fields(
    parser: argparse.ArgumentParser, cls: type, prefix: str, defaults: Any = None
) -> None:
    """Add one flag per init field of ``cls``; nested dataclass fields add theirs (dest a.b)."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default
        if defaults is not None:  # a nested config: the enclosing field's instance decides
            default, required = getattr(defaults, f.name), False
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            inner = default if default is not None else tp()
            _add_fields(parser, tp, prefix=f"{prefix}{f.name}.", defaults=inner)
            continue
        dest = prefix + f.name
        note = "(required)" if required else f"(default: {default})"
        # argparse %-formats help text: a literal "10%" in a docstring would crash --help.
        help_ = f"{docs.get(f.name, '')} {note}".replace("%", "%%")
        if tp is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_,
                dest=dest,
            )
            continue
        conv, choices, optional = _converter(tp)
        if isinstance(conv, tuple):  # tuple[X, ...]: one or more values
            parser.add_argument(
                flag,
                type=conv[1],
                nargs="+",
                default=default,
                help=help_,
                dest=dest,
                metavar=f.name.upper(),
                required=required,
            )
            continue

        def parse(text: str, conv: Any = conv, optional: bool = optional) -> Any:
            if optional and text.lower() == "none":
                return None
            return conv(text)

        parse.__name__ = getattr(conv, "__name__", "value")  # argparse names it in errors
        parser.add_argument(
            flag,
            type=parse,
            default=default,
            choices=choices,
            help=help_,
            dest=dest,
            metavar=f.name.upper(),
            required=required,
        )


def parse_config(cls: type[T], argv: list[str], prog: str) -> T:
    """Parse ``argv`` into ``cls``; bad values exit with one line naming the option."""
    parser = build_parser(cls, prog)
    ns = parser.parse_args(argv)
    try:
        return _build(cls, vars(ns), prefix="")
    except ValueError as e:
        parser.error(str(e))


def _build(cls: type[T], values: dict[str, Any], prefix: str) -> T:
    """``cls`` from parsed values keyed by dest (nested dataclasses built first)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], values, prefix=f"{prefix}{f.name}.")
        else:
            kwargs[f.name] = values[prefix + f.name]
    return cls(**kwargs)
