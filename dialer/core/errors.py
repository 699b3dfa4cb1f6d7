"""The project's exception tree.

DueCallError
├── ConfigError          a settings file or value is wrong (names the file and field)
├── ImportFileError      a borrowers file cannot be read as a whole (bad rows are not errors)
├── ImportFailedError    an import stopped part-way: its committed batches stay, the rest is not written
├── StoreError           the database is unusable (schema too new, file locked...)
├── AsteriskSetupError   Asterisk could not be provisioned or started
└── AmiError             talking to Asterisk's manager interface failed
    ├── AmiTimeout       no reply within the named timeout
    ├── AmiDisconnected  the connection dropped (or was never up)
    └── AmiActionFailed  Asterisk answered "Response: Error"

A hung-up call is normal flow, never an exception.
"""

from __future__ import annotations


class DueCallError(Exception):
    """Root of every error DueCall raises on purpose."""


def field_path(loc: tuple[str | int, ...]) -> str:
    """A field's place for an error message: ("nodes", "menu", "options", 2) -> nodes.menu.options[2]."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class ConfigError(DueCallError):
    pass


class ImportFileError(DueCallError):
    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class ImportFailedError(DueCallError):
    """An import stopped part-way (the database failed, the file changed under it)."""


class StoreError(DueCallError):
    pass


class AsteriskSetupError(DueCallError):
    pass


class AmiError(DueCallError):
    pass


class AmiTimeout(AmiError):
    pass


class AmiDisconnected(AmiError):
    pass


class AmiActionFailed(AmiError):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message
