"""The ``verl.plugins`` entry point: importing it activates the CPU platform under ``VERL_PLATFORM=cpu``.

verl's plugin discovery (``verl/__init__.py:70``) only imports the entry point's module, so this one
module acts on import; everything it does is in :func:`verl_cpu_platform.activate.activate`, a no-op
unless ``VERL_PLATFORM=cpu``.
"""

from verl_cpu_platform.activate import activate

ACTIVE = activate()
