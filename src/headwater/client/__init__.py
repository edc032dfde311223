"""The read side of headwater: browse flows, runs, steps, tasks and artifacts
(``Flow``, ``Run``, ``Step``, ``Task``, ``DataArtifact``), filtered by namespace.

The client reads the datastore (its records and index) and never imports the
runtime.
"""

from .base import HeadwaterObject
from .core import Flow, Headwater, Run, Step
from .namespace import default_namespace, get_namespace, namespace
from .source import default_metadata, get_metadata, metadata
from .task import DataArtifact, Metadata, Task, TaskData

#: Metaflow's name for :class:`Headwater` (users switching by changing imports use it).
Metaflow = Headwater

__all__ = [
    "DataArtifact",
    "Flow",
    "Headwater",
    "HeadwaterObject",
    "Metadata",
    "Metaflow",
    "Run",
    "Step",
    "Task",
    "TaskData",
    "default_metadata",
    "default_namespace",
    "get_metadata",
    "get_namespace",
    "metadata",
    "namespace",
]
