#!/usr/bin/env python
"""Fine-tune the dense retriever's dual encoder. Same as `python -m odqa train-dpr`; see --help.
Multi-GPU / TPU: `accelerate launch train_dpr.py <same options>`."""
import sys

from odqa.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("train-dpr", sys.argv[1:]))
