"""``python -m m9.report``: the same as ``m9 report``."""

import sys

from m9.report.command import main

sys.exit(main())
