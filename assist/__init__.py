"""assist: retrieval-augmented agent assist for customer-service teams, Chinese first."""

from assist.config import Settings, get_settings, package_version
from assist.errors import AssistError, IndexMismatch, IndexNotFound, KBValidationError, ModelError, TemplateError
from assist.index.embed import embedder_from_settings
from assist.index.search import Hit, Index
from assist.index.store import build_index, list_versions, load_index, open_index, rollback
from assist.kb import check_kb, load_kb

__all__ = [
    "AssistError",
    "Hit",
    "Index",
    "IndexMismatch",
    "IndexNotFound",
    "KBValidationError",
    "ModelError",
    "Settings",
    "TemplateError",
    "build_index",
    "check_kb",
    "embedder_from_settings",
    "get_settings",
    "list_versions",
    "load_index",
    "load_kb",
    "open_index",
    "package_version",
    "rollback",
]
