"""The audit chain: every fact lands in it, and any change to an event or a recording is named."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.changes import record_config
from audit.verify import head, last_anchor, verify
from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer
from dialer.core.clock import FixedClock
from dialer.core.models import (
    Attempt,
    CallResult,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    Reason,
    TargetState,
)
from dialer.core.vocab import RuleId
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore, Store, TargetUpdate
from dialer.store.chain import GENESIS, AuditEvent, StoredEvent, expected_hash, first_break
from dialer.store.events import CampaignCreated
from dialer.store.evidence import header_final, seal
from duecall.cli import main
from duecall.cli.audit import purge
from tests.support.audit_seed import sine_wav
from tests.support.config import make_settings
from tests.support.records import NOW, record


async def one_call(store: Store, tmp_path: Path, phone: str = "+12025550101") -> Attempt:
    """Import, decide, place (on paper) and finish one answered call with an IVR result and a recording."""
    await store.upsert_accounts([record("A1", phone)], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    [target] = await store.due_targets(campaign.id, NOW, 10)

    def allow(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
        # the 7th call of 7: the count is in the reason's fields (the flag never reads the words)
        seventh = Reason(RuleId.SEVEN_IN_SEVEN, "call 7 of 7", used=7, limit=7)
        return Decision(True, (Reason(RuleId.WINDOW, "inside 08:00-21:00"), seventh))

    base = tmp_path / "recordings" / "2026" / "11" / "28"
    attempt = await store.claim(target, NOW, allow, lambda i, at: str(base / str(i)), "d1", NOW)
    assert isinstance(attempt, Attempt)
    steps = (
        IvrStep(NOW + timedelta(seconds=2), "intro", "prompt", {"text": "Hello"}),
        IvrStep(NOW + timedelta(seconds=5), "menu", "key", {"digit": "9"}),
    )
    ivr = IvrSummary("reminder-en-US", "opt_out", None, None, True, steps)
    result = CallResult(
        Disposition.ANSWERED,
        NOW + timedelta(seconds=9),
        answered_at=NOW + timedelta(seconds=1),
        events=((NOW + timedelta(seconds=1), "answer", {"channel": "Local/1"}),),
        ivr=ivr,
    )
    update = TargetUpdate(TargetState.OPTED_OUT, NOW)
    await store.finish_attempt(attempt, result, update, "dialer:d1")
    await store.opt_out(phone, "voice", NOW + timedelta(seconds=5), "ivr", attempt_id=attempt.id)
    sine_wav(Path(f"{attempt.recording_path}.wav"), 1.0)
    sine_wav(Path(f"{attempt.recording_path}-replies") / "menu-1.wav", 0.5)
    found = await seal(attempt.recording_path, timeout=5)
    await store.add_recordings(attempt, found, NOW + timedelta(seconds=10), "dialer:d1")
    return attempt


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = await SqliteStore.open(tmp_path / "t.db")
    yield s
    await s.close()


def kinds(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT kind FROM audit_events ORDER BY seq")]


async def test_a_call_leaves_every_fact_in_order(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    assert kinds(tmp_path / "t.db") == [
        "campaign.created",
        "attempt.decided",
        "call.answer",
        "ivr.prompt",
        "ivr.key",
        "call.outcome",
        "call.ended",
        "consumer.opted_out",
        "recording.stored",
        "recording.stored",
    ]
    with sqlite3.connect(tmp_path / "t.db") as conn:
        decided = conn.execute("SELECT data FROM audit_events WHERE kind='attempt.decided'").fetchone()[0]
        flags = [
            r[0] for r in conn.execute("SELECT flag FROM attempt_flags WHERE attempt_id=?", (attempt.id,))
        ]
    assert '"rule":"7-in-7"' in decided and '"phone":"+12025550101"' in decided
    # the 7th call of 7, the borrower opted out, and the zone came from the number
    assert sorted(flags) == ["cap-reached", "opt-out", "zone-derived"]
    report = verify(tmp_path / "t.db")
    assert report.ok and report.events == 10 and report.recordings_checked == 2


async def test_a_blocked_decision_is_in_the_chain_with_its_reasons(store: Store, tmp_path: Path) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    [target] = await store.due_targets(campaign.id, NOW, 10)

    def block(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
        return Decision(False, (Reason("window", "outside 08:00-21:00"),), NOW + timedelta(hours=9))

    await store.claim(target, NOW, block, lambda i, at: "", "d1", NOW)
    with sqlite3.connect(tmp_path / "t.db") as conn:
        kind, account, data = conn.execute(
            "SELECT kind, account_id, data FROM audit_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert (kind, account) == ("contact.blocked", "A1")
    assert "outside 08:00-21:00" in data and "2026-11-28T21:00:00" in data


async def test_changing_one_stored_event_is_named(store: Store, tmp_path: Path) -> None:
    await one_call(store, tmp_path)
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            'UPDATE audit_events SET data=replace(data, \'"digit":"9"\', \'"digit":"1"\') WHERE seq=5'
        )
    report = verify(db)
    assert not report.ok
    assert report.broken is not None and report.broken.seq == 5
    assert "ivr.key" in str(report.broken)


async def test_deleting_or_reordering_events_is_named(store: Store, tmp_path: Path) -> None:
    await one_call(store, tmp_path)
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq=3")
    report = verify(db)
    assert report.broken is not None and report.broken.seq == 3 and "missing" in report.broken.why


async def test_a_recomputed_chain_is_caught_by_an_earlier_anchor(store: Store, tmp_path: Path) -> None:
    await one_call(store, tmp_path)
    db = tmp_path / "t.db"
    seq, digest = head(db)
    anchors = tmp_path / "anchors.log"
    anchors.write_text(f"{seq} {digest} 2026-11-28T12:00:00Z\n")
    # Someone with write access cuts the last event: every remaining link is still right...
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq=?", (seq,))
    assert verify(db).broken is None
    # ...but the head kept elsewhere is gone.
    report = verify(db, anchors)
    assert not report.ok and f"event {seq} is gone" in report.anchor_problems[0]


async def test_one_changed_byte_in_a_recording_is_named(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    wav = Path(f"{attempt.recording_path}.wav")
    data = bytearray(wav.read_bytes())
    data[len(data) // 2] ^= 0x01
    wav.write_bytes(bytes(data))
    report = verify(tmp_path / "t.db")
    assert report.broken is None and not report.ok
    assert report.recording_problems == [
        f"{wav}: content changed since event 9 stored it ({len(data)} bytes, was {len(data)})"
    ]


async def test_a_rewritten_recordings_table_does_not_fool_verify(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    wav = Path(f"{attempt.recording_path}.wav")
    sine_wav(wav, 2.0)  # replace the recording and "fix" the table to match
    from dialer.core.digest import sha256_file

    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("UPDATE recordings SET sha256=? WHERE path=?", (sha256_file(wav), str(wav)))
    problems = verify(tmp_path / "t.db").recording_problems
    assert any("differs from the chain's" in p for p in problems)
    assert any("content changed" in p for p in problems)


async def test_purge_removes_old_recordings_and_says_so_in_the_chain(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    await store.close()
    settings = make_settings(tmp_path, store={"path": str(tmp_path / "t.db")})
    wav = Path(f"{attempt.recording_path}.wav")
    # Within retention: nothing goes.
    assert await purge(settings, NOW + timedelta(days=30), False, "operator:test") == 0
    assert wav.exists()
    later = NOW + settings.audit.recordings_retention + timedelta(days=1)
    assert await purge(settings, later, True, "operator:test") == 2  # dry run
    assert wav.exists()
    assert await purge(settings, later, False, "operator:test") == 2
    assert not wav.exists() and not Path(f"{attempt.recording_path}-replies").exists()
    assert kinds(tmp_path / "t.db")[-2:] == ["recording.purged", "recording.purged"]
    report = verify(tmp_path / "t.db")
    assert report.ok and report.recordings_purged == 2 and report.recordings_checked == 0
    assert await purge(settings, later, False, "operator:test") == 0  # again: nothing left


async def test_config_and_script_changes_are_recorded_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ivr={"enabled": True})
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        first = await record_config(store, settings, NOW, "dialer:test")
        assert "settings" in first and "policy pack us-regf" in first
        assert any(name.startswith("ivr script") for name in first)
        assert await record_config(store, settings, NOW, "dialer:test") == []
        stricter = make_settings(tmp_path, ivr={"enabled": True}, policy={"max_attempts_per_day": 2})
        assert await record_config(store, stricter, NOW, "dialer:test") == ["settings"]
    finally:
        await store.close()


def test_a_wav_still_being_written_is_not_sealed(tmp_path: Path) -> None:
    wav = sine_wav(tmp_path / "a.wav", 1.0)
    assert header_final(wav)
    with wav.open("ab") as f:  # more audio after the header was written: not closed yet
        f.write(b"\0" * 320)
    assert not header_final(wav)


def test_links_depend_on_every_field() -> None:
    unsigned = StoredEvent(
        1, "2026-11-28T12:00:00Z", "call.answer", "dialer:x", 1, 2, "A1", "{}", GENESIS, ""
    )
    event = replace(unsigned, hash=expected_hash(unsigned))
    assert first_break([event])[2] is None
    for name in ("at", "kind", "actor", "account_id", "data"):
        changed = replace(event, **{name: getattr(event, name) + " "})
        assert first_break([changed])[2] is not None, name


def test_verify_command_exit_codes(tmp_path: Path) -> None:
    settings_file = tmp_path / "duecall.toml"
    settings_file.write_text(f'[store]\npath = "{tmp_path / "t.db"}"\n[audit]\nanchor_file = ""\n')
    runner = CliRunner()
    import asyncio

    async def build() -> None:
        s = await SqliteStore.open(tmp_path / "t.db")
        await s.audit([AuditEvent(CampaignCreated("c"), NOW, "operator:t")])
        await s.close()

    asyncio.run(build())
    ok = runner.invoke(main, ["--config", str(settings_file), "audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "1 events checked" in ok.output and "verified" in ok.output
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("UPDATE audit_events SET actor='operator:mallory'")
    bad = runner.invoke(main, ["--config", str(settings_file), "audit", "verify"])
    assert bad.exit_code == 1 and "BROKEN at event 1" in bad.output


async def test_a_recording_left_unsealed_by_a_crash_is_sealed_at_the_next_start(
    store: Store, tmp_path: Path
) -> None:
    """Killed after the result was stored but before the hash: the next run seals it."""
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    [target] = await store.due_targets(campaign.id, NOW, 10)
    base = tmp_path / "recordings" / "1"
    attempt = await store.claim(target, NOW, lambda *a: Decision(True), lambda i, at: str(base), "d", NOW)
    assert isinstance(attempt, Attempt)
    answered = CallResult(Disposition.ANSWERED, NOW + timedelta(seconds=30), answered_at=NOW)
    await store.finish_attempt(attempt, answered, TargetUpdate(TargetState.DONE, NOW))
    sine_wav(Path(f"{base}.wav"), 1.0)
    assert [a.id for a in await store.unsealed(campaign.id)] == [attempt.id]

    dialer = Dialer(
        make_settings(tmp_path),
        store,
        campaign,
        PackGate(load_pack("us-regf")),
        FixedClock(NOW),
        AmiEndpoint("127.0.0.1", 9, "x"),
        dialer_id="d",  # the dialer that placed it: a dialer seals only its own
    )
    await dialer._reconcile_leftovers()  # no open attempts: Asterisk is not asked
    assert await store.unsealed(campaign.id) == []
    assert kinds(tmp_path / "t.db")[-1] == "recording.stored"
    assert verify(tmp_path / "t.db").recordings_checked == 1


async def test_verify_since_the_last_anchor_checks_only_what_came_after(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    db = tmp_path / "t.db"
    seq, digest = head(db)
    anchors = tmp_path / "anchors.log"
    anchors.write_text(f"{seq} {digest} 2026-11-28T12:00:00Z\n")
    later = AuditEvent(CampaignCreated("d"), NOW, "operator:t")
    await store.audit([later, later])
    report = verify(db, anchors, last_anchor(anchors))
    assert report.ok and (report.from_seq, report.events, report.head_seq) == (seq, 2, seq + 2)
    assert report.recordings_checked == 0  # both were stored before the anchor
    # A change after the anchor is found...
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET data='{}' WHERE seq=?", (seq + 2,))
    broken = verify(db, anchors, last_anchor(anchors)).broken
    assert broken is not None and broken.seq == seq + 2
    # ...and one before it is caught by the anchored hash (the walk starts from it).
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET data=? WHERE seq=?", ('{"x":1}', seq))
    full = verify(db, anchors)
    assert full.broken is not None and full.broken.seq == seq
    assert verify(db, anchors, last_anchor(anchors)).anchor_problems == []  # hash column untouched
    assert Path(f"{attempt.recording_path}.wav").exists()
