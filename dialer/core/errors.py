"""The project's exception tree.

DueCallError
├── ConfigError          a settings file or value is wrong (names the file and field)
├── ImportFileError      a borrowers file cannot be read as a whole (bad rows are not errors)
├── ImportFailedError    an import stopped part-way: its committed batches stay, the rest is not written
├── StoreError           the database is unusable (schema too new, file locked...)
│   └── StoreUnavailable  the database server can't be reached now (gone, restarting): try again
├── AsteriskSetupError   Asterisk could not be provisioned or started
├── AmiError             talking to Asterisk's manager interface failed
│   ├── AmiTimeout       no reply within the named timeout
│   ├── AmiDisconnected  the connection dropped (or was never up)
│   └── AmiActionFailed  Asterisk answered "Response: Error"
│       └── AmiAuthFailed  wrong AMI user or secret: retrying cannot help
├── AgiError             a FastAGI command failed or its reply made no sense (names the command)
│   └── AgiPeerError     the peer broke a bound (an overlong line, an endless reply): dropped
├── ScriptError          an IVR script is invalid (every problem, with file, line and field)
├── TtsError             a prompt could not be synthesised (names the text and the voice)
├── VoiceError           a configured TTS voice is missing or unusable (names the file)
├── SpeechError          the speech model is unusable, or an utterance could not be recognised
│   └── SpeechModelError  a model's files or packages are missing or damaged (names them)
├── AuditorError         an auditors' account cannot be created, found or changed
├── SmsGatewayError      the SMS gateway could not be set up, started or reached (names the port or file)
├── TemplateError        an SMS template file is invalid (every problem, with file, line and field)
├── StrategyError        a contact strategy is invalid or refused (every problem, with file, line and field)
└── CampaignStateError   a start, pause or resume its campaign's state refuses (names both)

A hung-up call is normal flow, never an exception (ivr.agi.AgiHangup is not a DueCallError).
Every class is defined here; the modules that raise them import them from here.
"""

from __future__ import annotations

from typing import Protocol


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


class StoreUnavailable(StoreError):
    """The database server went away or refuses connections for now; the same work may succeed
    later. A transaction that raised it may or may not have committed."""


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


class AmiAuthFailed(AmiActionFailed):
    """Wrong user or secret: retrying cannot help, so `run` stops."""


class AgiError(DueCallError):
    """A command failed or the reply made no sense; names the command."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"AGI {command}: {message}")
        self.command = command
        self.message = message


class AgiPeerError(AgiError):
    """The peer broke a bound (an overlong line, an endless reply): the connection was dropped."""


class ScriptError(DueCallError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Voice(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def rate(self) -> int: ...


_SHOWN_CHARS = 40


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN_CHARS else flat[: _SHOWN_CHARS - 1] + "…"


class TtsError(DueCallError):
    """A prompt could not be synthesized; the message names the text (shortened) and the voice."""

    def __init__(self, text: str, voice: _Voice, reason: str) -> None:
        super().__init__(
            f"cannot synthesize {_shorten(text)!r} with voice {voice.name} at {voice.rate}: {reason}"
        )
        self.text = text
        self.voice = voice
        self.reason = reason


class VoiceError(DueCallError):
    """A configured TTS voice (a piper .onnx, its .onnx.json, the voice package) is missing or unusable."""


class SpeechError(DueCallError):
    """The speech model is unusable, or one utterance could not be recognised."""


class SpeechModelError(SpeechError):
    """A model folder or the packages it is assembled from are missing or damaged; names the files."""


class AuditorError(DueCallError):
    pass


class SmsGatewayError(DueCallError):
    pass


class TemplateError(DueCallError):
    """Every problem of an SMS template file, one per line, each naming file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StrategyError(DueCallError):
    """Every problem of a contact strategy file, one per line, each naming file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class CampaignStateError(DueCallError):
    """A start, pause or resume that makes no sense in the campaign's state; names both."""

    def __init__(self, campaign: str, state: str, wanted: str) -> None:
        super().__init__(f"campaign {campaign!r} is {state}: it cannot be {wanted}")
        self.campaign = campaign
        self.state = state
        self.wanted = wanted
