"""`python -m odqa <command>`."""
from odqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
