"""Run flows from Python and notebooks: ``Runner``, ``NBRunner``, ``ExecutingRun``; deploy them
to Argo Workflows: ``Deployer``, ``DeployedFlow``, ``TriggeredRun`` (runner layer).

A run is the flow's own CLI in a subprocess (``python flow.py run``); this
package builds its argv, checks the arguments first, captures its output and
hands back the client ``Run``. It may import the client and the CLI; the
runtime never imports it.
"""

from .deployed import DeployedFlow, TriggeredRun
from .deployer import Deployer
from .executing import ExecutingRun
from .notebook import NBRunner
from .runner import Runner

__all__ = ["DeployedFlow", "Deployer", "ExecutingRun", "NBRunner", "Runner", "TriggeredRun"]
