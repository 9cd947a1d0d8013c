import sys

from flinkmem.cli import main

sys.exit(main())
