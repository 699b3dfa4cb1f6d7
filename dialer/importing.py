"""`duecall accounts import`: parse a borrowers file off the event loop, upsert in batches.

Every data row ends up either in `accounts` or in `import_rejects` (and in a
rejects CSV that can be fixed and imported again): nothing is dropped.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dialer.accounts import (
    AccountRecord,
    ImportSettings,
    RejectedRow,
    read_accounts,
    read_header,
    write_rejects,
)
from dialer.store import ImportCounts, Store

BATCH_ROWS = 5000


@dataclass(frozen=True, slots=True)
class ImportReport:
    import_id: int
    rows: int
    inserted: int
    updated: int
    rejects: tuple[RejectedRow, ...]
    rejects_file: Path | None


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
    # read_accounts checks the whole file first and raises ImportFileError before any row.
    rows = await asyncio.to_thread(read_accounts, path, settings)
    import_id = await store.start_import(str(path), now)
    inserted = updated = total = 0
    rejects: list[RejectedRow] = []
    while batch := await asyncio.to_thread(_next_batch, rows):
        good = [r for r in batch if isinstance(r, AccountRecord)]
        bad = [r for r in batch if isinstance(r, RejectedRow)]
        counts = await store.upsert_accounts(good, now)
        if bad:
            await store.add_rejects(import_id, bad)
        inserted, updated = inserted + counts.inserted, updated + counts.updated
        rejects.extend(bad)
        total += len(batch)
        if progress:
            progress(len(batch))
    await store.finish_import(import_id, total, ImportCounts(inserted, updated), len(rejects), now)
    written = None
    if rejects:
        rejects_file.parent.mkdir(parents=True, exist_ok=True)
        header = await asyncio.to_thread(read_header, path)  # only needed for the rejects file
        await asyncio.to_thread(write_rejects, rejects_file, header, rejects)
        written = rejects_file
    return ImportReport(import_id, total, inserted, updated, tuple(rejects), written)


def count_data_lines(path: Path) -> int:
    """A quick total for the progress bar (quoted multi-line fields make it an estimate)."""
    with path.open("rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)
