"""``perception-verl build-geometry3k`` as a script: ``python data_prep/build_geometry3k.py --help``."""

import sys

from perception_verl.prepare.geometry3k import main, parse_split_map

__all__ = ["main", "parse_split_map"]

if __name__ == "__main__":
    sys.exit(main())
