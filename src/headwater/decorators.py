"""Decorator base classes at Metaflow's import path (public): ``from headwater.decorators
import StepDecorator, FlowDecorator`` as in ``metaflow.decorators``.
"""

from __future__ import annotations

from .flow.decorators import StepDecorator, make_step_decorator
from .flow.flow_decorators import FlowDecorator, make_flow_decorator

__all__ = ["FlowDecorator", "StepDecorator", "make_flow_decorator", "make_step_decorator"]
