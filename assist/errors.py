"""Errors a KB editor or operator can act on. The CLI prints them; the API turns them into JSON."""


class AssistError(Exception):
    """Base class: the message is meant for a person, without a stack trace."""


class KBValidationError(AssistError):
    """The KB has problems; `problems` holds one `path:line: message` entry each."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"the knowledge base has {len(self.problems)} problem(s):\n{lines}")


class IndexNotFound(AssistError):
    """No built index (or no such version) where one was expected."""


class IndexMismatch(AssistError):
    """The index on disk was built for another model, dimension or schema."""


class ModelError(AssistError):
    """The embedding model is missing, corrupt or cannot be loaded."""


class TemplateError(AssistError):
    """A reply template cannot be rendered."""
