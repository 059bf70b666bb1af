import sys

from prunebench.cli import main

sys.exit(main())
