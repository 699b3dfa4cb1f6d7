"""A node with `audio:` plays its recording (converted once at start); its `say` stays the transcript."""

from __future__ import annotations

import asyncio
import wave
from datetime import date
from pathlib import Path

from dialer.core.clock import SystemClock
from dialer.core.models import Account
from ivr.script import parse_script
from ivr.service import IvrService, account_fields
from tests.support.agi_peer import SECRET_SCRIPT, CannedPrompts, drive


class Prompts(CannedPrompts):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.converted: list[Path] = []
        self.rendered: list[str] = []

    async def render(self, text: str, voice: object) -> Path:
        self.rendered.append(text)
        return self.path

    async def recorded(self, source: Path) -> Path:
        self.converted.append(source)
        return source.parent / "converted.wav"


async def test_a_node_with_audio_plays_the_recording(work_dir: Path) -> None:
    with wave.open(str(work_dir / "bye.wav"), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\x10\x00" * 8000)
    text = SECRET_SCRIPT.replace('    say: "Goodbye."', '    say: "Goodbye."\n    audio: bye.wav')
    script = parse_script(text, work_dir / "s.yaml")
    prompts = Prompts(work_dir / "prompt.wav")

    async def opt_out(account: Account, attempt_id: int) -> None:
        pass

    service = IvrService({"en-US": script}, "en-US", prompts, None, opt_out, port=0, clock=SystemClock())  # type: ignore[arg-type]
    await service.start()
    assert prompts.converted == [work_dir / "bye.wav"]  # converted at start, before any call
    account = Account(
        1, "A1", "D1", "Olivia Smith", "+12025550101", (), False, 1000, "USD", date.today(), "en-US"
    )
    service.register("db1-1", account, account_fields(script, account), work_dir / "replies", 1)
    task = asyncio.create_task(service.server.serve())
    try:
        await asyncio.wait_for(service.server.ready.wait(), 5)
        commands = await drive(service.server.port, "db1-1", service.agi_secret("db1-1"))
    finally:
        task.cancel()
        await service.close()
    played = [c.split('"')[1] for c in commands if c.startswith("STREAM FILE")]
    assert played == [str(work_dir / "prompt"), str(work_dir / "converted")]
    result = service.take("db1-1")
    assert result is not None and result.result is not None
    prompts_heard = [s.detail for s in result.result.steps if s.kind == "prompt" and s.node == "bye"]
    assert any("Goodbye." in str(detail) for detail in prompts_heard)  # the transcript, for the audit trail
