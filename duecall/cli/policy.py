"""`duecall policy check`: the contact-policy engine on JSON lines."""

from __future__ import annotations

from typing import Any

import click

from dialer.core.errors import DueCallError


@click.group()
def policy() -> None:
    """The contact-policy engine."""


@policy.command("check")
@click.argument("file", type=click.File("rb"), default="-")
@click.option(
    "--policy", "policy_name", default=None, help="Pack for lines without one (dialer/policy/packs/)."
)
def policy_check(file: Any, policy_name: str | None) -> None:
    """Decide JSON-lines proposals (FILE or stdin); one JSON verdict line each (docs/policy.md)."""
    import json
    from functools import cache

    from dialer.policy.engine import decide
    from dialer.policy.jsonl import check_lines
    from dialer.policy.packs import load_pack

    packs = cache(load_pack)
    if policy_name is not None:
        try:
            packs(policy_name)
        except DueCallError as exc:
            raise click.BadParameter(str(exc), param_hint="--policy") from None  # exit 2
    for out in check_lines(file, packs, policy_name, decide):
        click.echo(json.dumps(out, ensure_ascii=False))
