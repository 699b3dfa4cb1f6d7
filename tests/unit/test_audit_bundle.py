"""Evidence bundles: what a masked one gives away (nothing to guess against), what check-bundle
proves with and without the auditor's anchors (against a chain on SQLite and on PostgreSQL), and
hostile ZIPs refused with a reason."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audit.masking import mask_name, mask_phone
from audit.users import create_user
from audit.verify import reading, store_head
from dialer.accounts.importer import import_accounts
from dialer.accounts.parse import ImportSettings
from dialer.core.config import Settings
from dialer.core.models import Attempt
from dialer.store.chain import GENESIS, link_hash
from dialer.store.opening import open_store
from duecall.cli import main
from tests.support.audit_seed import (
    ADMIN,
    AUDITOR,
    DAY1,
    PASSWORD,
    Seeded,
    _allow,
    _finish,
    backend_settings,
    backend_url,
    seed,
)
from tests.support.borrowers import HEADER
from tests.support.raw_db import tamper
from tests.support.web import client_for, sign_in

PHONE_A1, NAME_A1 = "+12025550101", "Wei Zhang"
LINK_FIELDS = ["prev_hash", "seq", "at", "kind", "actor", "campaign_id", "attempt_id", "account_id", "data"]
HEX64 = re.compile(r"[0-9a-f]{64}")
__all__ = ["backend_url"]  # the fixture, on both backends


@pytest.fixture
def site(backend_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Seeded]]:
    settings = backend_settings(tmp_path, backend_url)
    yield settings, asyncio.run(seed(settings, tmp_path))


def export(settings: Settings, attempt_id: int, who: str) -> bytes:
    with client_for(settings) as c:
        token = sign_in(c, who)
        if who == ADMIN:
            c.post("/reveal", data={"on": "1", "csrf": token})
        r = c.post(f"/calls/{attempt_id}/export", data={"csrf": token})
        assert r.status_code == 200, r.text
        return r.content


def evidence_of(bundle: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(zipfile.ZipFile(io.BytesIO(bundle)).read("evidence.json"))
    return loaded


def rezip(bundle: bytes, evidence: dict[str, Any], out: Path) -> Path:
    """The same ZIP with evidence.json replaced."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = (
                json.dumps(evidence, ensure_ascii=False).encode()
                if name == "evidence.json"
                else src.read(name)
            )
            dst.writestr(name, data)
    return out


@dataclass(frozen=True)
class Checked:
    exit_code: int
    output: str  # with the terminal's line wrapping undone


def check(*args: str | Path, config: Path | None = None) -> Checked:
    """`duecall audit check-bundle ARGS` (with `--config`, for --against-chain)."""
    pre = ["--config", str(config)] if config else []
    started = time.perf_counter()
    result = CliRunner().invoke(main, [*pre, "audit", "check-bundle", *map(str, args)])
    assert time.perf_counter() - started < 10, "check-bundle took too long"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output  # no traceback
    return Checked(result.exit_code, " ".join(result.output.split()))


def anchor_file(path: Path, *anchors: tuple[int, str]) -> Path:
    path.write_text("".join(f"{seq} {digest} 2025-03-05T00:00:00Z\n" for seq, digest in anchors))
    return path


def chain_hash(settings: Settings, seq: int) -> str:
    async def read() -> str:
        store = await open_store(settings)
        try:
            row = await store.fetch_one("SELECT hash FROM audit_events WHERE seq=?", (seq,))
            assert row is not None
            return str(row["hash"])
        finally:
            await store.close()

    return asyncio.run(read())


def head(settings: Settings) -> tuple[int, str]:
    """The chain's head, as `duecall audit anchor` notes it."""

    async def read() -> tuple[int, str]:
        async with reading(settings) as reads:
            return await store_head(reads)

    return asyncio.run(read())


def test_the_export_holds_the_recording_and_each_kind_of_bundle_what_it_should(
    site: tuple[Settings, Seeded],
) -> None:
    """(Moved from test_audit_web.py.) Unmasked: every link recomputable; masked: no hash at all."""
    settings, seeded = site
    for who, masked in [(AUDITOR, True), (ADMIN, False)]:
        raw = export(settings, seeded.ids["A2"], who)
        zf = zipfile.ZipFile(io.BytesIO(raw))
        evidence = json.loads(zf.read("evidence.json"))
        assert zf.read(evidence["recordings"][0]["file"]) == seeded.wavs["A2"].read_bytes()
        assert evidence["masked"] is masked and evidence["recordings"][0]["status"] == "verified"
        text = json.dumps(evidence, ensure_ascii=False)
        assert ("13912341234" in text) is not masked and ("张伟" in text) is not masked
        assert any(e["data_masked"] for e in evidence["events"]) is masked
        for e in evidence["events"]:
            if masked:
                assert "hash" not in e and "prev_hash" not in e
                continue
            assert link_hash(*[e[k] for k in LINK_FIELDS]) == e["hash"]
            if e["seq"] > 1:
                assert evidence["previous_hashes"][str(e["seq"])] == e["prev_hash"]
        assert ("previous_hashes" in evidence) is not masked


# -- the guessing attack ------------------------------------------------------------------------


def guess(evidence: dict[str, Any], shown: str, candidates: Iterable[str]) -> str | None:
    """Try each candidate for a masked value against every hash the bundle holds.

    For each event showing the masked value: put the candidate back, hash the event as the chain
    does (after its prev_hash, or, when the bundle gives none, after any hash it carries), and
    look the result up among the bundle's hashes. This is how `+1 ••••••0101` fell in 0.3 s.
    """
    found = set(HEX64.findall(json.dumps(evidence)))
    options = list(candidates)
    for e in evidence["events"]:
        if shown not in e["data"]:
            continue
        prevs = [e["prev_hash"]] if e.get("prev_hash") else sorted(found | {GENESIS})
        for plain in options:
            fields = {**e, "data": e["data"].replace(shown, plain)}
            for prev in prevs:
                if link_hash(prev, *[fields[k] for k in LINK_FIELDS[1:]]) in found:
                    return plain
    return None


PHONES = [f"+1{n:06d}0101" for n in range(202000, 203000)]  # the true number is among them
NAMES = [
    f"{first} {last}" for first in ("Wan", "Wen", "Wei", "Wu", "Wai") for last in ("Zhang", "Zhong", "Zhuan")
]


def old_masked_export(unmasked: dict[str, Any]) -> dict[str, Any]:
    """What the exporter gave an auditor before: masked text, the chain's hashes kept."""
    old = json.loads(json.dumps(unmasked))
    for e in old["events"]:
        e["data"] = e["data"].replace(PHONE_A1, mask_phone(PHONE_A1)).replace(NAME_A1, mask_name(NAME_A1))
    return old


def test_a_masked_bundle_gives_no_hash_to_guess_the_number_or_the_name_against(
    site: tuple[Settings, Seeded],
) -> None:
    settings, seeded = site
    a1 = seeded.ids["A1"]
    # The attack works against what the exporter used to give (a masked text beside the chain's hash)...
    before = old_masked_export(evidence_of(export(settings, a1, ADMIN)))
    started = time.perf_counter()
    assert guess(before, mask_phone(PHONE_A1), PHONES) == PHONE_A1
    assert guess(before, mask_name(NAME_A1), NAMES) == NAME_A1
    assert time.perf_counter() - started < 5
    # ...and finds nothing in today's masked export: the only hashes left are the recordings'.
    masked = evidence_of(export(settings, a1, AUDITOR))
    assert masked["masked"] is True and "previous_hashes" not in masked
    assert all("hash" not in e and "prev_hash" not in e for e in masked["events"])
    exports = [json.loads(e["data"])["sha256"] for e in masked["events"] if e["kind"] == "audit.export"]
    allowed = {r["sha256_chain"] for r in masked["recordings"]} | set(exports)  # audio, earlier ZIPs
    assert exports and set(HEX64.findall(json.dumps(masked))) == allowed
    assert guess(masked, mask_phone(PHONE_A1), PHONES) is None
    assert guess(masked, mask_name(NAME_A1), NAMES) is None
    text = json.dumps(masked, ensure_ascii=False)
    assert "2025550101" not in text and "Zhang" not in text


HOSTILE_NAME, HOSTILE_PHONE = 'Zoë "Ace" O\'Hara\\Jr', "+12025550188"


async def seed_hostile(settings: Settings, work_dir: Path) -> int:
    """One answered call of a borrower whose account id is her number and whose name has `"` and `\\`."""
    store = await open_store(settings)
    try:
        csv_path = work_dir / "hostile.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            row = [
                HOSTILE_PHONE,
                "D-1",
                HOSTILE_NAME,
                HOSTILE_PHONE,
                "America/New_York",
                "1.00",
                "USD",
                "2025-03-15",
                "en-US",
            ]
            csv.writer(handle).writerows([HEADER, row])
        report = await import_accounts(
            store, csv_path, ImportSettings("US", "USD", "en-US"), DAY1, work_dir / "r.csv"
        )
        assert not report.rejects, report.rejects
        campaign = await store.create_campaign("hostile", DAY1)
        await store.add_targets(campaign.id, DAY1)
        (target,) = await store.due_targets(campaign.id, DAY1, 10)
        path = str(settings.path(settings.dialer.recordings_dir) / "h")
        got = await store.claim(target, DAY1, _allow, lambda i, _: path, "test", DAY1 - timedelta(days=7))
        assert isinstance(got, Attempt)
        await _finish(store, got, "H", HOSTILE_NAME, DAY1)
        await create_user(store, AUDITOR, "auditor", PASSWORD, "operator:test", DAY1)
        return got.id
    finally:
        await store.close()


def test_a_hostile_name_and_an_account_id_that_is_the_number_are_masked_in_the_zip_and_page(
    backend_url: str, tmp_path: Path
) -> None:
    settings = backend_settings(tmp_path, backend_url)
    attempt = asyncio.run(seed_hostile(settings, tmp_path))
    raw = export(settings, attempt, AUDITOR)
    text = zipfile.ZipFile(io.BytesIO(raw)).read("evidence.json").decode()
    evidence = json.loads(text)
    decoded = json.dumps(evidence, ensure_ascii=False) + "".join(e["data"] for e in evidence["events"])
    decoded += str([json.loads(e["data"]) for e in evidence["events"]])
    for secret in ["Ace", "Hara", "2025550188"]:  # every word of the name (2+ letters), the number
        assert secret not in text and secret not in decoded, secret
    assert {e["account_id"] for e in evidence["events"]} == {mask_phone(HOSTILE_PHONE)}
    prompts = [json.loads(e["data"])["text"] for e in evidence["events"] if e["kind"] == "ivr.prompt"]
    assert prompts == ['Are you Z•• "•••• O••••••••? Press 1 for yes.'], prompts
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        pages = [c.get(f"/calls/{attempt}").text, c.get("/calls").text, c.get("/calls.csv").text]
        pages.append(c.get("/blocked").text)
    for page in pages:
        assert "2025550188" not in page and "Ace" not in page and "Hara" not in page
    assert mask_phone(HOSTILE_PHONE) in pages[1] and mask_phone(HOSTILE_PHONE) in pages[2]


# -- what check-bundle proves -------------------------------------------------------------------


def test_an_unmasked_bundle_is_consistent_offline_and_verified_only_by_your_anchor(
    site: tuple[Settings, Seeded], tmp_path: Path
) -> None:
    settings, seeded = site
    bundle = tmp_path / "evidence.zip"
    bundle.write_bytes(export(settings, seeded.ids["A2"], ADMIN))
    evidence = evidence_of(bundle.read_bytes())
    last = max(e["seq"] for e in evidence["events"])
    mine = anchor_file(tmp_path / "mine.log", (last, chain_hash(settings, last)))

    alone = check(bundle)
    assert alone.exit_code == 2 and "NOT VERIFIED" in alone.output, alone.output
    assert "consistency is not authenticity" in alone.output
    anchored = check(bundle, "--anchors", mine)
    assert anchored.exit_code == 0 and "verified" in anchored.output, anchored.output
    assert f"{len(evidence['events'])} events are the ones your anchors fixed" in anchored.output


def recompute(evidence: dict[str, Any]) -> None:
    """The forger's move: after an edit, recompute every hash and link of the bundle."""
    new: dict[int, str] = {}
    for e in sorted(evidence["events"], key=lambda e: e["seq"]):
        prev = new.get(e["seq"] - 1, evidence["previous_hashes"].get(str(e["seq"]), GENESIS))
        e["prev_hash"] = evidence["previous_hashes"][str(e["seq"])] = prev
        e["hash"] = new[e["seq"]] = link_hash(*[prev if k == "prev_hash" else e[k] for k in LINK_FIELDS])


def test_check_bundle_is_not_fooled_by_masked_flags_a_recomputed_chain_or_a_second_evidence_json(
    site: tuple[Settings, Seeded], tmp_path: Path
) -> None:
    settings, seeded = site
    raw = export(settings, seeded.ids["A2"], ADMIN)
    evidence = evidence_of(raw)
    last = max(e["seq"] for e in evidence["events"])
    mine = anchor_file(tmp_path / "mine.log", (last, chain_hash(settings, last)))

    all_masked = json.loads(json.dumps(evidence))
    for e in all_masked["events"]:
        e["data_masked"] = True
    flagged = check(rezip(raw, all_masked, tmp_path / "flagged.zip"), "--anchors", mine)
    assert flagged.exit_code == 2 and "NOT VERIFIED" in flagged.output, flagged.output
    assert f"the content of {len(evidence['events'])} masked or unhashed events" in flagged.output

    forged = json.loads(json.dumps(evidence))
    for e in forged["events"]:
        e["data"] = e["data"].replace("opt_out", "promise_to_pay")
    recompute(forged)
    forged_zip = rezip(raw, forged, tmp_path / "forged.zip")
    alone = check(forged_zip)
    assert alone.exit_code == 2 and "verified" not in alone.output.replace("NOT VERIFIED", ""), alone.output
    caught = check(forged_zip, "--anchors", mine)
    assert caught.exit_code == 1 and f"event {last}: its hash differs from your anchor" in caught.output

    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("evidence.json", json.dumps(forged))
        z.writestr("evidence.json", json.dumps(evidence))
    dup = check(twice, "--anchors", mine)
    assert dup.exit_code == 1 and "evidence.json: appears twice in the ZIP" in dup.output, dup.output


def test_tampered_files_and_events_are_named(site: tuple[Settings, Seeded], tmp_path: Path) -> None:
    settings, seeded = site
    raw = export(settings, seeded.ids["A2"], ADMIN)

    def rewrite(change: Callable[[str, bytes], bytes]) -> Path:
        out = tmp_path / f"tampered-{len(list(tmp_path.glob('tampered-*')))}.zip"
        with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
            for name in src.namelist():
                dst.writestr(name, change(name, src.read(name)))
        return out

    def flip_wav(name: str, data: bytes) -> bytes:
        return data[:-10] + bytes([data[-10] ^ 1]) + data[-9:] if name.endswith(".wav") else data

    def edit_outcome(name: str, data: bytes) -> bytes:
        if name != "evidence.json":
            return data
        evidence = json.loads(data)
        for e in evidence["events"]:
            if e["kind"] == "call.outcome":
                e["data"] = e["data"].replace("opt_out", "promise_to_pay")
        return json.dumps(evidence, ensure_ascii=False).encode()

    bad_wav = check(rewrite(flip_wav))
    assert bad_wav.exit_code == 1 and "SHA-256 differs from the chain's" in bad_wav.output
    bad_event = check(rewrite(edit_outcome))
    assert bad_event.exit_code == 1 and "differs from what was hashed (call.outcome)" in bad_event.output


def test_a_masked_bundle_says_what_it_cannot_prove_and_is_checked_against_the_chain(
    site: tuple[Settings, Seeded], tmp_path: Path
) -> None:
    settings, seeded = site
    raw = export(settings, seeded.ids["A2"], AUDITOR)
    bundle = tmp_path / "masked.zip"
    bundle.write_bytes(raw)
    mine = anchor_file(tmp_path / "mine.log", head(settings))

    offline = check(bundle, "--anchors", mine)
    assert offline.exit_code == 2 and "masked (names and numbers hidden)" in offline.output, offline.output
    assert "cannot prove: that these events are the chain's" in offline.output
    assert "1 recording files have the SHA-256 the bundle's recording.stored events give" in offline.output

    no_anchor = check(bundle, "--against-chain", config=tmp_path / "duecall.toml")
    assert no_anchor.exit_code == 2 and "none of your anchors is at or after" in no_anchor.output
    ok = check(bundle, "--against-chain", "--anchors", mine, config=tmp_path / "duecall.toml")
    assert ok.exit_code == 0 and "verified" in ok.output, ok.output
    assert "events are the chain's, as this database holds it" in ok.output

    evidence = evidence_of(raw)
    edited = json.loads(json.dumps(evidence))
    outcome = next(e for e in edited["events"] if e["kind"] == "call.outcome")
    outcome["data"] = outcome["data"].replace("opt_out", "promise_to_pay")
    bad = check(
        rezip(raw, edited, tmp_path / "edited.zip"),
        "--against-chain",
        "--anchors",
        mine,
        config=tmp_path / "duecall.toml",
    )
    assert bad.exit_code == 1 and f"event {outcome['seq']}: differs from the chain's (data)" in bad.output

    cut = json.loads(json.dumps(evidence))
    dropped = cut["events"].pop(len(cut["events"]) // 2)
    short = check(
        rezip(raw, cut, tmp_path / "cut.zip"),
        "--against-chain",
        "--anchors",
        mine,
        config=tmp_path / "duecall.toml",
    )
    assert short.exit_code == 1 and f"leaves out: [{dropped['seq']}]" in short.output, short.output


async def rewrite_chain(settings: Settings) -> None:
    """Change every opt_out to promise_to_pay and recompute every link, as the database's owner could."""
    store = await open_store(settings)
    try:
        await tamper(store, "UPDATE audit_events SET data = replace(data, 'opt_out', 'promise_to_pay')")
        prev = GENESIS
        for fields in await store.fetch_all("SELECT * FROM audit_events ORDER BY seq"):
            digest = link_hash(prev, *[fields[k] for k in LINK_FIELDS[1:]])
            await tamper(
                store,
                "UPDATE audit_events SET prev_hash=?, hash=? WHERE seq=?",
                (prev, digest, fields["seq"]),
            )
            prev = digest
    finally:
        await store.close()


def test_a_chain_rewritten_after_your_anchor_fails_against_the_chain(
    site: tuple[Settings, Seeded], tmp_path: Path
) -> None:
    """The database's owner edits the outcome and recomputes the whole chain, then exports."""
    settings, seeded = site
    mine = anchor_file(tmp_path / "mine.log", head(settings))
    asyncio.run(rewrite_chain(settings))
    bundle = tmp_path / "masked.zip"
    bundle.write_bytes(export(settings, seeded.ids["A2"], AUDITOR))
    result = check(bundle, "--against-chain", "--anchors", mine, config=tmp_path / "duecall.toml")
    assert result.exit_code == 1 and "does not lead to your anchor" in result.output, result.output


# -- hostile bundles ----------------------------------------------------------------------------


GOOD_EVENT = {
    "seq": 1,
    "at": "2025-03-01T14:00:00Z",
    "kind": "call.answer",
    "actor": "dialer:x",
    "campaign_id": 1,
    "attempt_id": 1,
    "account_id": "A1",
    "data": "{}",
    "data_masked": False,
    "prev_hash": GENESIS,
    "hash": "0" * 64,
}


def evidence_json(**change: Any) -> bytes:
    base = {"format": "duecall-evidence/2", "masked": False, "events": [GOOD_EVENT], "recordings": []}
    return json.dumps({**base, **change}).encode()


MALFORMED = [
    (
        "wrong type",
        evidence_json(events=[{**GOOD_EVENT, "seq": "1"}]),
        "events[0].seq: Input should be a valid integer",
    ),
    (
        "missing key",
        evidence_json(events=[{k: v for k, v in GOOD_EVENT.items() if k != "kind"}]),
        "events[0].kind: Field required",
    ),
    ("events not a list", evidence_json(events={"a": 1}), "events: Input should be a valid list"),
    ("not an object", b"[1, 2]", "top level: Input should be a valid dictionary"),
    (
        "non-UTF-8",
        evidence_json(generated_by="caf\xe9").replace(b"caf\\u00e9", b"caf\xe9"),
        "not UTF-8 (byte",
    ),
    ("huge number", evidence_json().replace(b'"seq": 1', b'"seq": 1' + b"0" * 5000), "not valid JSON"),
    (
        "seq out of range",
        evidence_json(events=[{**GOOD_EVENT, "seq": 10**30}]),
        "events[0].seq: Input should be less than",
    ),
    (
        "deep nesting",
        b'{"format": "duecall-evidence/2", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        "nested too deeply",
    ),
    ("NaN", evidence_json().replace(b'"seq": 1', b'"seq": NaN'), "NaN is not a JSON number"),
    (
        "bad hash",
        evidence_json(events=[{**GOOD_EVENT, "hash": "zz"}]),
        "events[0].hash: String should match pattern",
    ),
    ("unknown format", evidence_json(format="duecall-evidence/9"), "format: Input should be"),
    ("not JSON", b"PK\x03\x04 surely", "not valid JSON"),
]


@pytest.mark.parametrize(("what", "content", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_evidence_is_refused_with_what_is_wrong(
    tmp_path: Path, what: str, content: bytes, expected: str
) -> None:
    bundle = tmp_path / "bad.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("evidence.json", content)
    result = check(bundle)
    assert result.exit_code == 1 and "refused" in result.output and expected in result.output, result.output


def test_not_a_bundle_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all" * 100)
    assert "not a ZIP file" in check(junk).output
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("other.txt", "hi")
    assert "no evidence.json in the ZIP" in check(empty).output
    missing = tmp_path / "missing.zip"
    with zipfile.ZipFile(missing, "w") as z:
        rec = {"file": "recordings/0-1.wav", "sha256_chain": "1" * 64}
        z.writestr("evidence.json", evidence_json(recordings=[rec]))
    assert "recordings/0-1.wav: listed in evidence.json but not in the ZIP" in check(missing).output


def zip_bomb(path: Path, name: str = "evidence.json", evidence: bytes = b"") -> Path:
    """~300 KB on disk; entry `name` inflates to 300 MB (the 310 KB / 666 MB bomb)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        if evidence:
            z.writestr("evidence.json", evidence)
        with z.open(name, "w") as f:
            f.write(b'{"format":"duecall-evidence/2","masked":false,"events":[],"recordings":[],"pad":"')
            for _ in range(300):
                f.write(b"a" * (1 << 20))
            f.write(b'"}')
    return path


def lying_bomb(path: Path, name: str = "evidence.json", evidence: bytes = b"") -> Path:
    """The same bomb with both its headers saying the entry is 100 bytes long."""
    data = bytearray(zip_bomb(path, name, evidence).read_bytes())
    real = zipfile.ZipFile(path).getinfo(name).file_size.to_bytes(4, "little")
    assert data.count(real) == 2  # the local header's and the central directory's
    path.write_bytes(bytes(data.replace(real, (100).to_bytes(4, "little"))))
    assert zipfile.ZipFile(path).getinfo(name).file_size == 100
    return path


def recording_bomb(path: Path) -> Path:
    listed = evidence_json(recordings=[{"file": "recordings/0-1.wav", "sha256_chain": "1" * 64}])
    return lying_bomb(path, "recordings/0-1.wav", listed)


def many_entries(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evidence.json", evidence_json())
        for n in range(20_000):
            z.writestr(f"r/{n}", b"")
    return path


def lying_count(path: Path) -> Path:
    """50,000 entries whose end record says 5: the central directory's size still gives it away."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evidence.json", evidence_json())
        for n in range(50_000):
            z.writestr(f"r/{n}", b"")
    data = bytearray(path.read_bytes())
    assert data[-22:-18] == b"PK\x05\x06"
    data[-14:-10] = (5).to_bytes(2, "little") * 2  # entries on this disk, entries in all
    path.write_bytes(bytes(data))
    return path


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so the child would report the
# peak of the (large) pytest process that started it.
MEASURE = """
import re, sys, time
from pathlib import Path
from audit.bundle_check import check_bundle
started = time.perf_counter()
report = check_bundle(Path(sys.argv[1]))
seconds = round(time.perf_counter() - started, 2)
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(peak_kb // 1024, seconds)
print(report.problems)
"""


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (zip_bomb, "evidence.json: declares 3145728"),
        (lying_bomb, "evidence.json: cannot be read: Bad CRC-32"),
        (recording_bomb, "recordings/0-1.wav: cannot be read: Bad CRC-32"),
        (many_entries, "20001 entries (at most 10000)"),
        (lying_count, "bytes (at most 2097152)"),
    ],
    ids=["bomb", "lying-header-bomb", "recording-bomb", "entries", "lying-entry-count"],
)
def test_zip_bombs_are_refused_in_bounded_memory_and_time(
    tmp_path: Path, make: Callable[[Path], Path], expected: str
) -> None:
    bundle = make(tmp_path / "bomb.zip")
    assert bundle.stat().st_size < 5 << 20  # small files, every one
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, str(bundle)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    (figures, problems) = run.stdout.splitlines()
    peak_mb, seconds = figures.split()
    assert expected in problems and "refused" in problems, problems
    assert int(peak_mb) < 150, f"{peak_mb} MB (666 MB before the fix)"
    assert float(seconds) < 5, seconds


# -- audit verify with hostile anchor lines -----------------------------------------------------


def test_verify_names_an_out_of_range_or_garbled_anchor_line(
    site: tuple[Settings, Seeded], tmp_path: Path
) -> None:
    settings, _ = site
    seq, digest = head(settings)
    anchors = tmp_path / "anchors.log"
    anchors.write_text(
        f"{seq} {digest} ok\n"
        f"0 {GENESIS} the empty chain\n"
        f"{10**30} {digest}\n"
        f"-5 {digest}\n"
        "garbage\n"
        f"{seq + 1000} {digest}\n"
        f"{'9' * 5000} {digest}\n"
        f"١٢ {digest}\n"
    )
    for extra in ([], ["--since-last-anchor"]):
        cmd = [
            "--config",
            str(tmp_path / "duecall.toml"),
            "audit",
            "verify",
            "--anchors",
            str(anchors),
            *extra,
        ]
        result = CliRunner().invoke(main, cmd)
        assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
        out = " ".join(result.output.split())
        assert f"anchors.log:3: sequence number {10**30} is out of range" in out, out
        assert "anchors.log:4: not 'SEQ HASH [TIME]'" in out and "anchors.log:5: not 'SEQ HASH" in out
        assert f"anchors.log:6: event {seq + 1000} is gone: it is past the head ({seq})" in out
        assert f"anchors.log:7: sequence number {'9' * 40}... is out of range" in out
        assert "anchors.log:8: not 'SEQ HASH" in out  # Arabic-Indic digits are not a sequence number
        assert "anchors.log:1" not in out and "anchors.log:2" not in out
        assert "anchors: 3 checked" in out
