#!/usr/bin/env python
"""Domain-adaptive MLM training of an encoder. Same as `python -m odqa train-mlm`; see --help."""
import sys

from odqa.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("train-mlm", sys.argv[1:]))
