"""The audit chain: every fact lands in it, and any change to an event or a recording is named (each
test that takes `store` or `backend_url` runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from audit.changes import record_config
from audit.verify import last_anchor, store_head, verify_store
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
from dialer.store.opening import open_store
from duecall.cli import main
from duecall.cli.audit import purge
from tests.support import raw_db
from tests.support.audit_seed import AUDITOR, backend_settings, backend_url, seed, sine_wav
from tests.support.config import make_settings, write_config
from tests.support.postgres import postgres_db, postgres_server
from tests.support.raw_db import tamper, tamper_in
from tests.support.records import NOW, record
from tests.support.stores import backend_store
from tests.support.web import client_for, sign_in

__all__ = ["backend_store", "backend_url", "postgres_db", "postgres_server"]  # the fixtures


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
def store(backend_store: Store) -> Store:
    return backend_store


async def kinds(store: Store) -> list[str]:
    return [r["kind"] for r in await store.fetch_all("SELECT kind FROM audit_events ORDER BY seq")]


async def test_a_call_leaves_every_fact_in_order(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    assert await kinds(store) == [
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
    decided = (await store.fetch_all("SELECT data FROM audit_events WHERE kind='attempt.decided'"))[0][0]
    flags = [
        r[0]
        for r in await store.fetch_all("SELECT flag FROM attempt_flags WHERE attempt_id=?", (attempt.id,))
    ]
    assert '"rule":"7-in-7"' in decided and '"phone":"+12025550101"' in decided
    # the 7th call of 7, the borrower opted out, and the zone came from the number
    assert sorted(flags) == ["cap-reached", "opt-out", "zone-derived"]
    report = await verify_store(store)
    assert report.ok and report.events == 10 and report.recordings_checked == 2


async def test_a_blocked_decision_is_in_the_chain_with_its_reasons(store: Store, tmp_path: Path) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    [target] = await store.due_targets(campaign.id, NOW, 10)

    def block(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
        return Decision(False, (Reason("window", "outside 08:00-21:00"),), NOW + timedelta(hours=9))

    await store.claim(target, NOW, block, lambda i, at: "", "d1", NOW)
    [last] = await store.fetch_all(
        "SELECT kind, account_id, data FROM audit_events ORDER BY seq DESC LIMIT 1"
    )
    kind, account, data = last["kind"], last["account_id"], last["data"]
    assert (kind, account) == ("contact.blocked", "A1")
    assert "outside 08:00-21:00" in data and "2026-11-28T21:00:00" in data


async def test_changing_one_stored_event_is_named(store: Store, tmp_path: Path) -> None:
    await one_call(store, tmp_path)
    await tamper(
        store, 'UPDATE audit_events SET data=replace(data, \'"digit":"9"\', \'"digit":"1"\') WHERE seq=5'
    )
    report = await verify_store(store)
    assert not report.ok
    assert report.broken is not None and report.broken.seq == 5
    assert "ivr.key" in str(report.broken)


async def test_deleting_or_reordering_events_is_named(store: Store, tmp_path: Path) -> None:
    await one_call(store, tmp_path)
    await tamper(store, "DELETE FROM audit_events WHERE seq=3")
    report = await verify_store(store)
    assert report.broken is not None and report.broken.seq == 3 and "missing" in report.broken.why


async def test_a_recomputed_chain_is_caught_by_an_earlier_anchor(store: Store, tmp_path: Path) -> None:
    await one_call(store, tmp_path)
    seq, digest = await store_head(store)
    anchors = tmp_path / "anchors.log"
    anchors.write_text(f"{seq} {digest} 2026-11-28T12:00:00Z\n")
    # Someone with write access cuts the last event: every remaining link is still right...
    await tamper(store, "DELETE FROM audit_events WHERE seq=?", (seq,))
    assert (await verify_store(store)).broken is None
    # ...but the head kept elsewhere is gone.
    report = await verify_store(store, anchors)
    assert not report.ok and f"event {seq} is gone" in report.anchor_problems[0]


async def test_one_changed_byte_in_a_recording_is_named(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    wav = Path(f"{attempt.recording_path}.wav")
    data = bytearray(wav.read_bytes())
    data[len(data) // 2] ^= 0x01
    wav.write_bytes(bytes(data))
    report = await verify_store(store)
    assert report.broken is None and not report.ok
    assert report.recording_problems == [
        f"{wav}: content changed since event 9 stored it ({len(data)} bytes, was {len(data)})"
    ]


async def test_a_rewritten_recordings_table_does_not_fool_verify(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    wav = Path(f"{attempt.recording_path}.wav")
    sine_wav(wav, 2.0)  # replace the recording and "fix" the table to match
    from dialer.core.digest import sha256_file

    await tamper(store, "UPDATE recordings SET sha256=? WHERE path=?", (sha256_file(wav), str(wav)))
    problems = (await verify_store(store)).recording_problems
    assert any("differs from the chain's" in p for p in problems)
    assert any("content changed" in p for p in problems)


async def test_purge_removes_old_recordings_and_says_so_in_the_chain(
    backend_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, store={"url": backend_url})
    store = await open_store(settings)
    attempt = await one_call(store, tmp_path)
    wav = Path(f"{attempt.recording_path}.wav")
    # Within retention: nothing goes.
    assert await purge(settings, NOW + timedelta(days=30), False, "operator:test") == 0
    assert wav.exists()
    later = NOW + settings.audit.recordings_retention + timedelta(days=1)
    assert await purge(settings, later, True, "operator:test") == 2  # dry run
    assert wav.exists()
    assert await purge(settings, later, False, "operator:test") == 2
    assert not wav.exists() and not Path(f"{attempt.recording_path}-replies").exists()
    assert (await kinds(store))[-2:] == ["recording.purged", "recording.purged"]
    report = await verify_store(store)
    await store.close()
    assert report.ok and report.recordings_purged == 2 and report.recordings_checked == 0
    assert await purge(settings, later, False, "operator:test") == 0  # again: nothing left


async def test_config_and_script_changes_are_recorded_once(backend_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, store={"url": backend_url}, ivr={"enabled": True})
    store = await open_store(settings)
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

    async def build() -> None:
        s = await SqliteStore.open(tmp_path / "t.db")
        await s.audit([AuditEvent(CampaignCreated("c"), NOW, "operator:t")])
        await s.close()

    asyncio.run(build())
    ok = runner.invoke(main, ["--config", str(settings_file), "audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "1 events checked" in ok.output and "verified" in ok.output
    raw_db.execute(tmp_path / "t.db", "UPDATE audit_events SET actor='operator:mallory'")
    bad = runner.invoke(main, ["--config", str(settings_file), "audit", "verify"])
    assert bad.exit_code == 1 and "BROKEN at event 1" in bad.output


def test_the_audit_commands_read_a_postgresql_store(postgres_db: str, tmp_path: Path) -> None:
    """verify, anchor and verify --since-last-anchor on a [store] url: passes, then names a changed event."""
    anchors = tmp_path / "anchors.log"
    settings = make_settings(tmp_path, store={"url": postgres_db})  # writes tmp_path/duecall.toml
    cfg = write_config(
        tmp_path / "audit.toml", {"store": {"url": postgres_db}, "audit": {"anchor_file": str(anchors)}}
    )

    async def build() -> None:
        store = await open_store(settings)
        await store.audit([AuditEvent(CampaignCreated(name), NOW, "operator:t") for name in "abc"])
        await store.close()

    asyncio.run(build())
    runner = CliRunner()

    def duecall(*args: str) -> Result:
        return runner.invoke(main, ["--config", str(cfg), "audit", *args])

    ok = duecall("verify")
    assert ok.exit_code == 0 and "3 events checked" in ok.output and "verified" in ok.output, ok.output
    anchored = duecall("anchor")
    assert anchored.exit_code == 0 and anchors.read_text().startswith("3 "), anchored.output
    assert tamper_in(settings, "UPDATE audit_events SET actor='operator:mallory' WHERE seq=2") == 1
    bad = duecall("verify")
    assert bad.exit_code == 1 and "BROKEN at event 2" in bad.output and "FAILED" in bad.output, bad.output
    # Only what came after the anchor: nothing yet, but the anchor's own hash must still be in the chain.
    since = duecall("verify", "--since-last-anchor")
    assert since.exit_code == 0 and "0 events checked after the anchor at event 3" in since.output, (
        since.output
    )
    tamper_in(settings, "DELETE FROM audit_events WHERE seq=3")
    cut = duecall("verify")
    assert cut.exit_code == 1 and "event 3 is gone" in cut.output, cut.output


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
    assert (await kinds(store))[-1] == "recording.stored"
    assert (await verify_store(store)).recordings_checked == 1


async def test_verify_since_the_last_anchor_checks_only_what_came_after(store: Store, tmp_path: Path) -> None:
    attempt = await one_call(store, tmp_path)
    seq, digest = await store_head(store)
    anchors = tmp_path / "anchors.log"
    anchors.write_text(f"{seq} {digest} 2026-11-28T12:00:00Z\n")
    later = AuditEvent(CampaignCreated("d"), NOW, "operator:t")
    await store.audit([later, later])
    report = await verify_store(store, anchors, last_anchor(anchors))
    assert report.ok and (report.from_seq, report.events, report.head_seq) == (seq, 2, seq + 2)
    assert report.recordings_checked == 0  # both were stored before the anchor
    # A change after the anchor is found...
    await tamper(store, "UPDATE audit_events SET data='{}' WHERE seq=?", (seq + 2,))
    broken = (await verify_store(store, anchors, last_anchor(anchors))).broken
    assert broken is not None and broken.seq == seq + 2
    # ...and one before it is caught by the anchored hash (the walk starts from it).
    await tamper(store, "UPDATE audit_events SET data=? WHERE seq=?", ('{"x":1}', seq))
    full = await verify_store(store, anchors)
    assert full.broken is not None and full.broken.seq == seq
    since = await verify_store(store, anchors, last_anchor(anchors))
    assert since.anchor_problems == []  # hash column untouched
    assert Path(f"{attempt.recording_path}.wav").exists()


def test_the_trail_page_verifies_the_store_and_names_a_changed_event(
    backend_url: str, tmp_path: Path
) -> None:
    settings = backend_settings(tmp_path, backend_url)
    asyncio.run(seed(settings, tmp_path))
    with client_for(settings) as c:
        token = sign_in(c, AUDITOR)
        page = c.post("/trail", data={"csrf": token}).text
        # the seed's one recordings row outside the folder (a made-up hash) is its only problem
        assert 'id="trail-broken">none<' in page and "outside.wav: content changed" in page
        assert tamper_in(settings, "UPDATE audit_events SET actor='operator:mallory' WHERE seq=2") == 1
        page = c.post("/trail", data={"csrf": token}).text
    assert ">FAILED<" in page and 'id="trail-broken">event 2: its content changed' in page
