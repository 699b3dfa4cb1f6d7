"""The reports' counts, aggregated in SQL: a campaign's funnel, for all its accounts or per arm.

Every account in the campaign counts (intention to treat: reached or not), each once however many
calls or texts it had; reports/metrics.py says in words what each count is. One read snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.core.models import PERSON_ANSWERED
from dialer.store.db import Database, fetch_all

_PERSON = "(" + ", ".join(f"'{d.value}'" for d in sorted(PERSON_ANSWERED)) + ")"  # for SQL
FUNNEL = f"""
WITH
calls AS (
    SELECT account_pk, count(*) AS placed, max(disposition IN {_PERSON}) AS contacted
    FROM attempts WHERE campaign_id = ?1 AND coalesce(disposition, '') != 'not_placed'
    GROUP BY account_pk),
rpc AS (
    SELECT t.account_pk, count(*) AS calls FROM attempts t JOIN outcomes o ON o.attempt_id = t.id
    WHERE t.campaign_id = ?1 AND json_extract(o.detail, '$.right_party') = 1 GROUP BY t.account_pk),
texts AS (
    SELECT account_pk, count(*) AS sent, sum(state = 'delivered') AS delivered FROM messages
    WHERE campaign_id = ?1 AND purpose = 'reminder' AND state != 'not_sent' GROUP BY account_pk),
replies AS (
    SELECT i.account_pk, max(i.kind IN ('answer', 'for_person')) AS replied, max(i.kind = 'opt_out') AS stop
    FROM inbound_messages i JOIN messages m ON m.id = i.message_id
    WHERE m.campaign_id = ?1 AND i.account_pk IS NOT NULL GROUP BY i.account_pk),
promised AS (
    SELECT account_pk FROM attempts WHERE campaign_id = ?1 AND outcome = 'promise_to_pay'
    UNION
    SELECT i.account_pk FROM inbound_messages i JOIN messages m ON m.id = i.message_id
    WHERE m.campaign_id = ?1 AND i.outcome = 'promise_to_pay' AND i.account_pk IS NOT NULL)
SELECT {{group}} AS grp,
    count(*) AS accounts,
    count(calls.account_pk) AS attempted,
    coalesce(sum(calls.placed), 0) AS calls,
    coalesce(sum(calls.contacted), 0) AS contacted,
    count(rpc.account_pk) AS right_party,
    coalesce(sum(rpc.calls), 0) AS right_party_calls,
    count(DISTINCT promised.account_pk) AS promised,
    count(texts.account_pk) AS texted,
    coalesce(sum(texts.sent), 0) AS texts,
    coalesce(sum(texts.delivered), 0) AS delivered,
    coalesce(sum(replies.replied), 0) AS replied,
    coalesce(sum(replies.stop), 0) AS opted_out
FROM targets t
LEFT JOIN arm_assignments arm ON arm.campaign_id = t.campaign_id AND arm.account_pk = t.account_pk
LEFT JOIN calls ON calls.account_pk = t.account_pk
LEFT JOIN rpc ON rpc.account_pk = t.account_pk
LEFT JOIN texts ON texts.account_pk = t.account_pk
LEFT JOIN replies ON replies.account_pk = t.account_pk
LEFT JOIN promised ON promised.account_pk = t.account_pk
WHERE t.campaign_id = ?1
GROUP BY grp ORDER BY grp
"""
_GROUPS = {"": "''", "arm": "coalesce(arm.arm, '')"}


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """A campaign's counts for one group ("" for all of them, else the arm)."""

    group: str
    accounts: int  # in the campaign (assigned to the arm): every one counts
    attempted: int  # accounts with a call placed
    calls: int
    contacted: int  # accounts on which a person answered
    right_party: int  # accounts on which the borrower confirmed who they are
    right_party_calls: int
    promised: int  # accounts that promised to pay, on a call or by text
    texted: int  # accounts with a text handed to the gateway
    texts: int
    delivered: int
    replied: int  # accounts that answered a text
    opted_out: int  # accounts that replied STOP


class Reports:
    """The store's report queries (a part of `SqliteStore`)."""

    _db: Database

    async def funnel(self, campaign_id: int, by: str = "") -> list[FunnelRow]:
        """The campaign's funnel for all its accounts (`by` ""), or per champion/challenger arm."""
        if by not in _GROUPS:
            raise ValueError(f"a funnel by {by!r}: by one of {sorted(_GROUPS)}")
        async with self._db.read() as db:
            rows = await fetch_all(db, FUNNEL.format(group=_GROUPS[by]), (campaign_id,))
        return [FunnelRow(r["grp"], *(int(r[k]) for k in r.keys()[1:])) for r in rows]
