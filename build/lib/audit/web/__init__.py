"""The auditors' web page (Starlette, server-rendered)."""
