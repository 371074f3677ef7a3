"""`python -m tdn` is the `tdn` command."""

import sys

from tdn.cli import main

sys.exit(main())
