"""``python -m lowlight.training``: the training command line (see :mod:`lowlight.training.cli`)."""
import sys

from .cli import main

sys.exit(main())
