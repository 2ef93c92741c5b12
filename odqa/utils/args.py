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


def parse_cli(dataclass_types: Sequence[type], argv: list[str] | None, prog: str,
              description: str, epilog: str | None = None) -> tuple[Any, ...]:
    import argparse

    from transformers import HfArgumentParser

    parser = HfArgumentParser(list(dataclass_types), prog=prog, description=description, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return tuple(parser.parse_args_into_dataclasses(args=argv))
