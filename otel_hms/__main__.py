"""``python -m otel_hms`` is ``otel-hms``."""

import sys

from .cli import main

sys.exit(main())
