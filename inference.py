#!/usr/bin/env python
"""Retrieve, read, write and score answers. Same as `python -m odqa infer`; see --help."""
import sys

from odqa.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("infer", sys.argv[1:]))
