"""Stands in for verl's ``main_ppo`` as a recipe's ``ENTRY_MODULE`` (training cannot run on CPU).

Writes its arguments, one per line, to the file named by ``PV_RECORD_ENTRY``, so a test can tell
whether (and with what) the recipe got as far as launching the trainer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    Path(os.environ["PV_RECORD_ENTRY"]).write_text("\n".join(sys.argv[1:]) + "\n")
