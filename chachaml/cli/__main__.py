"""``python -m chachaml.cli``: the same as the ``chachaml`` command."""

import sys

from chachaml.cli import main

sys.exit(main())
