"""`python -m edgetrace` is the `edgetrace` command."""

import sys

from edgetrace.cli import main

sys.exit(main())
