"""``python -m lowlight.training``: the training command line (see :mod:`lowlight.training.cli`); a run
on a folder of plain photos ends with the report on its held-out photos (:func:`lowlight.adapt.report_on_heldout`,
the one place where the entry point reaches above the training layer)."""
import sys

from lowlight.adapt import report_on_heldout

from .cli import main

sys.exit(main(after_training=report_on_heldout))
