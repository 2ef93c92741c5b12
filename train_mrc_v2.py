#!/usr/bin/env python
"""Fine-tune an extractive reader. Same as `python -m odqa train-mrc`; see --help."""
import sys

from odqa.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("train-mrc", sys.argv[1:]))
