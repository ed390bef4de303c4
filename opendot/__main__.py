"""`python -m opendot`: the same as the `opendot` console script."""

import sys

from opendot.cli import main

sys.exit(main())
