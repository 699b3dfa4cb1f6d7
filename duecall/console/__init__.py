"""The operations console: the operations team's pages in the auditors' web app (docs/operations.md).

They need the reports, the strategy's dry run and the IVR and SMS renderers, which the audit
package may not import; so they live here, in the app layer, and join audit's Starlette app
through its `Extension` hook (`duecall audit serve` serves both).
"""

from __future__ import annotations

from audit.web.app import Extension
from dialer.core.config import Settings
from duecall.console.routes import HERE, Console


def console_pages(settings: Settings) -> Extension:
    """The operations pages for `audit.web.app.create_app(settings, extensions=[...])`."""
    console = Console(settings)
    return Extension(
        routes=console.routes(),
        templates=HERE / "templates",
        nav=(("/ops", "Operations"), ("/ops/previews", "Previews")),
        lifespan=console.lifespan,
    )
