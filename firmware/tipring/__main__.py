"""`python -m tipring` is the `tipring` command."""

import sys

from tipring.cli import main

sys.exit(main())
