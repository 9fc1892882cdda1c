"""Typed rejections of a CWM. Their messages are written to be shown to an LLM.

Every message names the line (when there is one), what is wrong, and what to
use instead; the Fix prompt of the search shows `str(error)` verbatim.
"""

from __future__ import annotations

__all__ = [
    "DeterminismWarning",
    "CWMContractError",
    "CWMError",
    "CWMLoadError",
    "CWMResourceError",
    "CWMRuntimeError",
    "CWMSyntaxError",
    "CWMValidationError",
    "UsageError",
]


class DeterminismWarning(UserWarning):
    """Recorded transitions show that the next observation is not a function of observation and action."""


class UsageError(Exception):
    """Bad command-line or configuration input (not a CWM's fault): one line, exit status 2."""


class SandboxError(RuntimeError):
    """The sandbox itself failed (a worker could not start or warm up), not a candidate.

    Defined here (re-exported by `cwm_jax.sandbox`) so that the command line
    can report it without importing the sandbox.
    """


class CWMError(Exception):
    """A CWM was rejected. `str(e)` is the full message, with its line."""

    kind = "error"

    def __init__(self, message: str, *, line: int | None = None, source_line: str | None = None):
        self.message = message
        self.line = line
        self.source_line = source_line
        super().__init__(self._format())

    def _format(self) -> str:
        text = f"line {self.line}: {self.message}" if self.line is not None else self.message
        if self.source_line:
            text += f"\n    {self.source_line.strip()}"
        return text


def detached(error: CWMError) -> CWMError:
    """`error` (and the problems it lists) without traceback, context or cause.

    A rejection that is kept (a problem list, the validator's cache) must not
    keep alive the frames it was raised from, nor the values they hold (a
    huge constant the validator refused to fold).
    """
    for e in (error, *getattr(error, "problems", ())):
        e.__traceback__ = e.__context__ = e.__cause__ = None
        e.__suppress_context__ = True
    return error


class CWMSyntaxError(CWMError):
    """The source is not valid Python."""

    kind = "syntax"


class CWMValidationError(CWMError):
    """The source breaks a rule of the jax subset (static check, nothing ran).

    A program with several problems gets one error listing all of them in
    line order (`problems`), so one fix can address every one.
    """

    kind = "validation"

    def __init__(self, message: str, *, line: int | None = None, source_line: str | None = None,
                 problems: tuple[CWMError, ...] = (), omitted: int = 0):
        self.problems = tuple(problems)
        self.omitted = omitted
        super().__init__(message, line=line, source_line=source_line)

    def _format(self) -> str:
        if not self.problems:
            return super()._format()
        text = "\n".join(str(problem) for problem in self.problems)
        return text + (f"\n... and {self.omitted} more problems" if self.omitted else "")

    @classmethod
    def combine(cls, problems: list[CWMError], *, limit: int) -> CWMError:
        """One error for several static problems, ordered by line, at most `limit` listed."""
        ordered = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
        if len(ordered) == 1:
            return ordered[0]
        shown = ordered[:limit]
        header = f"{len(ordered)} problems; fix all of them"
        return cls(header, line=shown[0].line, source_line=shown[0].source_line, problems=tuple(shown),
                   omitted=len(ordered) - len(shown))


class CWMLoadError(CWMError):
    """The module failed while it was executed or traced."""

    kind = "load"


class CWMContractError(CWMError):
    """`step` is missing, has the wrong signature, or returns wrong shapes or dtypes."""

    kind = "contract"


class CWMRuntimeError(CWMError):
    """`step` traced fine but produced non-finite values on probe states."""

    kind = "runtime"


class CWMResourceError(CWMError):
    """`step` is too large: too many operations or too big arrays."""

    kind = "resource"
