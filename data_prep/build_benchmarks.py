"""``perception-verl build-benchmarks`` as a script: ``python data_prep/build_benchmarks.py --help``."""

import sys

from perception_verl.prepare.benchmarks import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
