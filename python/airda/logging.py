"""airda's logger and its verbosity: ``airda.logging.set_verbosity(airda.logging.WARNING)``
silences the per-trial lines; progress for long jobs (see :mod:`airda._logging`)."""

from airda._logging import *  # noqa: F403
from airda._logging import __all__  # noqa: F401
