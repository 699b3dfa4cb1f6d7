"""The SMS channel: the gateway door (Kannel), templates, delivery reports and replies."""
