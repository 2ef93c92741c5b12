"""Command-line parsing shared by every sub-command.

Every option is a dataclass field parsed by :class:`transformers.HfArgumentParser`, so
``--help`` lists it with its help text and default, and a whole run can be described by a
single ``.json``/``.yaml`` file given as the only argument.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from odqa.errors import ConfigError


def _help_formatter():
    import argparse

    class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """Examples in descriptions keep their lines; every option shows its default."""

    return HelpFormatter


def parse_cli(dataclass_types: Sequence[type], argv: list[str] | None, prog: str,
              description: str, epilog: str | None = None) -> tuple[Any, ...]:

    from transformers import HfArgumentParser

    parser = HfArgumentParser(list(dataclass_types), prog=prog, description=description, epilog=epilog,
                              formatter_class=_help_formatter())
    _group_inherited_options(parser, dataclass_types)
    if len(parser._actions) > 40:  # argparse's usage line would list them all (train-mrc: ~180 lines)
        parser.usage = f"{prog} [--option VALUE ...] | {prog} OPTIONS.json|OPTIONS.yaml"
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        path = Path(argv[0])
        if not path.exists():
            raise ConfigError(f"{path}: options file not found.")
        try:
            if path.suffix == ".json":
                return tuple(parser.parse_json_file(str(path)))
            return tuple(parser.parse_yaml_file(str(path)))
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None
    *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if unknown:
        raise ConfigError(unknown_option_message(parser, unknown))
    return tuple(parsed)


def _group_inherited_options(parser: Any, dataclass_types: Sequence[type]) -> None:
    """``--help`` lists a dataclass's own options first; the ones it inherits (e.g. the ~130 of transformers'
    ``TrainingArguments``) go to a last group named by its ``_inherited_group_name``."""
    import dataclasses

    for dtype in dataclass_types:
        name = getattr(dtype, "_inherited_group_name", None)
        if not name:
            continue
        own = set(dtype.__dict__.get("__annotations__", {}))
        inherited = {f.name for f in dataclasses.fields(dtype)} - own
        group = parser.add_argument_group(name)
        for source in parser._action_groups:
            if source is group:
                continue
            for action in [a for a in source._group_actions if a.dest in inherited]:
                source._group_actions.remove(action)
                group._group_actions.append(action)


def unknown_option_message(parser: Any, unknown: list[str]) -> str:
    """``unknown option --foo; did you mean --fool?`` (one line, the closest known spellings)."""
    import difflib

    # HfArgumentParser also accepts --top-k for --top_k: suggest the underscore spelling only
    known = sorted({s for action in parser._actions for s in action.option_strings
                    if s.startswith("--") and "-" not in s[2:]})
    flags = [u for u in unknown if u.startswith("-")] or unknown
    parts = []
    for flag in flags:
        close = difflib.get_close_matches(flag.split("=", 1)[0], known, n=2, cutoff=0.6)
        parts.append(f"{flag}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
    kind = "option" if flags[0].startswith("-") else "argument"
    return (f"unknown {kind}{'s' if len(parts) > 1 else ''} {', '.join(parts)}; `--help` lists every option.")


def take_option(argv: list[str], name: str, flag: bool = False) -> tuple[str | None, list[str]]:
    """Remove ``name`` (``--name value``, ``--name=value``, or a bare ``--name`` when ``flag``) from ``argv``.

    Returns the last value given (``"true"`` for a bare flag, None when absent) and the other arguments.
    Used to translate options of older command lines before parsing.
    """
    value: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, inline = arg.partition("=")
        if key != name:
            rest.append(arg)
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value, i = argv[i + 1], i + 2
        elif flag:
            value, i = "true", i + 1
        else:
            raise ConfigError(f"{name} needs a value.")
    return value, rest


def is_true(value: str | None) -> bool:
    """Booleans as argparse-style command lines write them (``--flag``, ``--flag true``, ``--flag False``)."""
    return value is not None and value.strip().lower() in {"true", "1", "yes", "y", "t"}


def print_notes(prog: str, notes: list[str]) -> None:
    """One line per translated option, on stderr (the meaning of an old option is never changed silently)."""
    for note in notes:
        print(f"{prog}: note: {note}", file=sys.stderr)
