"""``headwater.exception``: Metaflow's module name for the errors (``from metaflow.exception import ...``).

The same module object as :mod:`headwater.exceptions`, so ``except MetaflowNotFound`` and
``except HeadwaterNotFound`` catch the same class whichever module it was imported from.
"""

import sys

from . import exceptions as _exceptions

sys.modules[__name__] = _exceptions
