"""``python -m otel_hms`` is ``otel-hms``."""

import sys

from otel_hms.cli import main

sys.exit(main())
