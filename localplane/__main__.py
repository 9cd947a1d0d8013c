"""`python -m localplane up|down|status`: the same as `python -m localplane.controlplane`."""

import sys

from localplane.controlplane import main

sys.exit(main())
