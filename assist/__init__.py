"""assist: retrieval-augmented agent assist for customer-service teams, Chinese first."""

from assist.config import Settings, get_settings
from assist.errors import AssistError, IndexMismatch, IndexNotFound, KBValidationError, ModelError, TemplateError
from assist.index.store import build_index, list_versions, load_index, rollback
from assist.kb import check_kb, load_kb

__all__ = [
    "AssistError",
    "IndexMismatch",
    "IndexNotFound",
    "KBValidationError",
    "ModelError",
    "Settings",
    "TemplateError",
    "build_index",
    "check_kb",
    "get_settings",
    "list_versions",
    "load_index",
    "load_kb",
    "rollback",
]
