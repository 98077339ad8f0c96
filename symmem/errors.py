"""One error type for everything a user can get wrong.

Deep code raises short, precise messages; the public entry points add the file
name and the source line with a caret (see :func:`SymmemError.render`).  The CLI
turns any :class:`SymmemError` into one message and exit code 1, never a
traceback.
"""

from __future__ import annotations

from symmem.records import record


@record
class Span:
    """A position in DSL source text (1-based line and column)."""

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None


class SymmemError(Exception):
    """Base class of every error symmem reports to a user."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        source: str | None = None,
        filename: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.filename = filename
        self.hint = hint

    def with_source(self, source: str, filename: str | None) -> SymmemError:
        """Attach the text (and file name) the span points into; returns self."""
        if self.source is None:
            self.source = source
        if self.filename is None:
            self.filename = filename
        return self

    def render(self) -> str:
        """`file:line:col: error: message`, the line, and a caret under the column."""
        where = self.filename or "<input>"
        head = (
            f"{self.filename}: error: {self.message}" if self.filename else f"error: {self.message}"
        )
        lines: list[str] = []
        if self.span is not None:
            head = f"{where}:{self.span.line}:{self.span.column}: error: {self.message}"
            if self.source is not None:
                # lines as the parser counts them: only "\n" ends one (Python's splitlines
                # also breaks at U+2028, form feed... which a comment may hold)
                src_lines = self.source.split("\n")
                if 1 <= self.span.line <= len(src_lines):
                    text = src_lines[self.span.line - 1].rstrip("\r").expandtabs(1)
                    width = 1
                    if self.span.end_line == self.span.line and self.span.end_column:
                        width = max(1, self.span.end_column - self.span.column)
                    lines = [f"    {text}", "    " + " " * (self.span.column - 1) + "^" * width]
        out = [head, *lines]
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render() if (self.span or self.filename) else self.message


class DSLSyntaxError(SymmemError, SyntaxError):
    """The text is not a well-formed .mem program."""


class SemanticError(SymmemError, ValueError):
    """Well-formed text that does not describe a valid network (unknown names, bad shapes...)."""


class ShapeError(SemanticError):
    """Two connected layers disagree on a tensor shape."""


class OptionError(SymmemError, ValueError):
    """A bad option value from the CLI or the Python API (budget, dtype, optimizer...)."""


class ImportHFError(SymmemError, ValueError):
    """A Hugging Face config.json that symmem cannot model exactly."""


def suggest(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """'did you mean ...?' text for the nearest candidate, or None."""
    import difflib

    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
