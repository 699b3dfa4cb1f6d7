"""The command's one error boundary: what a user can cause becomes one line, never a traceback.

Every `DueCallError` (an error DueCall raises on purpose) and the OS errors a wrong path causes (a
file missing or unreadable, a folder where a file should be, a full disk) print
`duecall: error: <message>` on stderr and exit with status 1. Ctrl-C prints one line and exits 130,
as shells expect; a reader that closed the pipe ends the command quietly (click's own EPIPE
handling, which this leaves alone). Anything else is a bug and keeps its traceback. Commands just raise.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click

from dialer.core.errors import DueCallError

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C
_PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class DueCallGroup(click.Group):
    """The main group: it runs every command, so its `invoke` is where their errors end."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DueCallError as error:
            _exit_with(str(error))
        except OSError as error:
            if not _expected(error):
                raise  # a socket or an errno without a file: a bug until shown otherwise
            _exit_with(os_message(error))
        except KeyboardInterrupt:
            click.echo("duecall: interrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None


def _expected(error: OSError) -> bool:
    return isinstance(error, _PATH_ERRORS) or error.filename is not None


def os_message(error: OSError) -> str:
    """'<file>: <reason>' (the file first, as in every other error); as raised when it names none."""
    if error.filename is None or not error.strerror:
        return str(error)
    names = f"{error.filename} -> {error.filename2}" if error.filename2 is not None else f"{error.filename}"
    return f"{names}: {error.strerror}"


def one_line(message: str) -> str:
    """A message of several lines (every bad setting, every script problem) as one line."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def _exit_with(message: str) -> NoReturn:
    click.echo(f"{click.style('duecall: error:', fg='red')} {one_line(message)}", err=True)
    raise click.exceptions.Exit(1) from None
