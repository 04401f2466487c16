"""``python -m npl_disposal``: the same command line as ``npl-disposal``."""

import sys

from npl_disposal.cli import run

sys.exit(run())
