"""Test configuration: hypothesis runs derandomized so CI is reproducible.

Set ``HYPOTHESIS_PROFILE=explore`` to draw fresh random examples locally.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
