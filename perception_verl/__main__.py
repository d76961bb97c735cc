"""``python -m perception_verl <command>``: the ``perception-verl`` console script."""

import sys

from perception_verl.cli import main

if __name__ == "__main__":
    sys.exit(main())
