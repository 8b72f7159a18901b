"""Every command's failure as one line on stderr and a non-zero exit, never a traceback.

The top-level command group (`OneLineErrors`) catches what a person can cause and fix — bad arguments, a
broken policy or scenario file, a path that is not writable, a database that does not answer, an unknown
operator — and prints `error: <what, naming the field or file and the value>`. Exit codes: 2 for bad
arguments and bad input files (as click does), 1 for the environment (files, database, ERP). Anything else
is a bug and keeps its traceback. DEMAND_CONTROL_DEBUG=1 shows the traceback of the known errors too.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup

DEBUG_ENV = "DEMAND_CONTROL_DEBUG"
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 1


class CliError(Exception):
    """A refusal the command explains itself (e.g. an unknown operator): printed as is."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """Collapse a multi-line message (pydantic, SQLAlchemy) into one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    # SQLAlchemy appends the statement and a help link; they say nothing to the person at the terminal
    kept = [line for line in lines if not line.startswith(("[SQL:", "[parameters:", "(Background on this error"))]
    return "; ".join(kept) or type(text).__name__


def describe(exc: BaseException) -> tuple[str, int]:
    """(one line, exit code) for a known error; raises nothing, guesses nothing about unknown ones."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, CliError):
        return one_line(str(exc)), exc.exit_code
    if isinstance(exc, SQLAlchemyError):
        original = getattr(exc, "orig", None)
        return f"the warehouse database did not answer: {one_line(str(original or exc))}", EXIT_ENVIRONMENT
    if isinstance(exc, OSError):
        if exc.strerror and exc.filename:
            return f"{exc.strerror}: {exc.filename}", EXIT_ENVIRONMENT
        return one_line(str(exc)), EXIT_ENVIRONMENT
    return one_line(str(exc)), EXIT_BAD_INPUT


def known_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from demand_control.sample.tryton.server import TrytonSetupError

    return CliError, ValueError, OSError, SQLAlchemyError, TrytonSetupError, LookupError


class OneLineErrors(TyperGroup):
    """The command group whose failures are one line (see the module docstring)."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:  # bad arguments (click's usage errors): the message names the option
            fail(exc.format_message(), exc.exit_code)
        except known_errors() as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            message, code = describe(exc)
            fail(message, code)


def fail(message: str, code: int) -> None:
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)
