"""`duecall accounts import`: parse a borrowers file off the event loop, upsert in batches.

Every data row ends up either in `accounts` or in `import_rejects` (and in a
rejects CSV that can be fixed and imported again): nothing is dropped.

Each batch is one transaction with its chain event (`accounts.import_batch`),
so a failure part-way leaves whole batches only; the import then ends with
`accounts.import_failed` and :class:`ImportFailedError`, never as a success.
Importing the same file again is safe: accounts are keyed by their id.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dialer.accounts.parse import (
    AccountRecord,
    ImportSettings,
    RejectedRow,
    kept_columns,
    read_accounts,
    read_header,
    write_rejects,
)
from dialer.core.errors import ImportFailedError
from dialer.store import Store

BATCH_ROWS = 5000


@dataclass(frozen=True, slots=True)
class ImportReport:
    import_id: int
    rows: int
    inserted: int
    updated: int
    rejects: tuple[RejectedRow, ...]
    rejects_file: Path | None
    columns: tuple[str, ...] = ()  # the lender's own columns kept (the header's, in its order)


def _next_batch(rows: Iterator[AccountRecord | RejectedRow]) -> list[AccountRecord | RejectedRow]:
    return list(itertools.islice(rows, BATCH_ROWS))


async def import_accounts(
    store: Store,
    path: Path,
    settings: ImportSettings,
    now: datetime,
    rejects_file: Path,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    # Both raise ImportFileError for a bad header; read_accounts checks the whole file before any row.
    columns = await asyncio.to_thread(kept_columns, path)
    rows = await asyncio.to_thread(read_accounts, path, settings)
    import_id = await store.start_import(str(path), now)
    inserted = updated = total = 0
    rejects: list[RejectedRow] = []
    try:
        for number in itertools.count(1):
            batch = await asyncio.to_thread(_next_batch, rows)
            if not batch:
                break
            good = [r for r in batch if isinstance(r, AccountRecord)]
            bad = [r for r in batch if isinstance(r, RejectedRow)]
            counts = await store.import_batch(import_id, number, good, bad, now)
            inserted, updated = inserted + counts.inserted, updated + counts.updated
            rejects.extend(bad)
            total += len(batch)
            if progress:
                progress(len(batch))
        await store.finish_import(import_id, now)
    except Exception as exc:  # whatever stopped it, the import is recorded as failed, not as done
        rows.close()  # the file, and the phone-checking workers
        raise await import_failure("import", store.fail_import, import_id, total, exc, now) from exc
    written = None
    if rejects:
        rejects_file.parent.mkdir(parents=True, exist_ok=True)
        header = await asyncio.to_thread(read_header, path)  # only needed for the rejects file
        await asyncio.to_thread(write_rejects, rejects_file, header, rejects)
        written = rejects_file
    return ImportReport(import_id, total, inserted, updated, tuple(rejects), written, columns)


async def import_failure(
    what: str,
    record: Callable[[int, str, datetime], Awaitable[None]],
    import_id: int,
    committed: int,
    exc: Exception,
    now: datetime,
) -> Exception:
    """Record an import that stopped part-way (`record`: the store's fail method) and the error
    that says so: what is imported, what not, that importing again is safe, and why."""
    reason = f"{type(exc).__name__}: {exc}"
    try:
        await record(import_id, reason, now)
    except Exception as again:  # the database itself is failing: say so, keep the first cause
        reason += f" (and the failure could not be recorded: {again})"
    return ImportFailedError(
        f"{what} {import_id} failed after {committed} rows, which are imported; the rest is not. "
        f"Importing the file again is safe. Cause: {reason}"
    )


def count_data_lines(path: Path) -> int:
    """A quick total for the progress bar (quoted multi-line fields make it an estimate).

    Counted in blocks: a file that is one huge line is never held in memory."""
    with path.open("rb") as handle:
        ends = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    return max(0, ends - 1)
