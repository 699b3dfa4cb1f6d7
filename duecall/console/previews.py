"""Script and template previews for the operations page: each IVR script's prompts as the sample
borrower hears them (listened to through the configured TTS: the prompt cache, keyed by a hash of
text and voice), and each SMS message with its coding and segments. No real account is used."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from duecall.samples import script_lines

if TYPE_CHECKING:
    from ivr.tts import PromptCache


@dataclass(frozen=True, slots=True)
class ScriptPreview:
    name: str
    locale: str
    lines: tuple[tuple[str, str], ...]  # (where in the script, the text spoken)


@dataclass(frozen=True, slots=True)
class TextPreview:
    file: str
    locale: str
    message: str
    text: str
    encoding: str  # "GSM-7, 92 septets, 1 segment"
    segments: int


def scripts(settings: Settings) -> list[ScriptPreview]:
    """The configured scripts (`[ivr] scripts`), rendered for the sample borrower."""
    from ivr.script import load_script

    found = []
    for path in settings.ivr.scripts:
        script = load_script(settings.path(path))
        found.append(ScriptPreview(script.name, script.locale, tuple(script_lines(script))))
    return found


def texts(settings: Settings) -> list[TextPreview]:
    """Every message of the configured template files (`[sms] templates`), with long sample values
    (as `duecall sms render` shows them: the longest a text can be)."""
    from sms.lint import sample_fields
    from sms.templates import load_templates, render

    found = []
    for path in settings.sms.templates:
        templates = load_templates(settings.path(path))
        fields = sample_fields(templates)
        for name in templates.messages:
            done = render(templates, name, fields)
            found.append(
                TextPreview(
                    templates.name,
                    templates.locale,
                    name,
                    done.text,
                    done.encoding.describe(),
                    done.encoding.segments,
                )
            )
    return found


class Voices:
    """The prompt cache the page listens through, made on the first listen (a missing voice file
    is then a message on the page, not a failed start) and closed with the app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: PromptCache | None = None
        self._made = asyncio.Lock()

    async def wav(self, preview: ScriptPreview, line: int) -> Path:
        """The WAV of one line of a script (synthesised once, then from the cache)."""
        from ivr.script import load_script

        cache = await self._prompts()
        path = next(
            (self.settings.path(p) for p in self.settings.ivr.scripts if p.stem == preview.name), None
        )
        if path is None:
            raise DueCallError(f"script {preview.name} is no longer in [ivr] scripts")
        script = await asyncio.to_thread(load_script, path)
        voice = cache.voice(script.locale, script.voice, script.rate)
        return await cache.render(preview.lines[line][1], voice)

    async def _prompts(self) -> PromptCache:
        async with self._made:
            if self._cache is None:
                from duecall.runtime import prompt_cache

                self._cache = prompt_cache(self.settings)  # checks the voice files: quick
            return self._cache

    async def close(self) -> None:
        if self._cache is not None:
            await self._cache.close()
            self._cache = None
