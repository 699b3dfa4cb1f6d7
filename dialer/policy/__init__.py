"""The contact policy: may this contact happen now, and why (engine), applied to accounts (gate)."""

from dialer.core.native import attach

attach(__name__, __path__)  # the engine's compiled build, when it is current (dialer/core/native.py)
