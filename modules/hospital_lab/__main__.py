"""`python -m hospital_lab`: one run of the simulation (see run.py for the environment it reads)."""

import sys

from .run import main

sys.exit(main())
