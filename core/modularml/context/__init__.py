"""The runtime context: :class:`ExperimentContext`, the nodes it registers, and the registration policy."""

from modularml.context.context import ExperimentContext, ExperimentNode
from modularml.context.fold import active_fold, fold_scope
from modularml.context.policy import RegistrationPolicy

__all__ = ["ExperimentContext", "ExperimentNode", "RegistrationPolicy", "active_fold", "fold_scope"]
