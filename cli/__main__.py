"""`python -m cli`, the same as the `dtpoc` console script."""

from cli.main import run

run()
