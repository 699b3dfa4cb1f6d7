"""The audit trail: hash chain, recordings, verification and the auditors' web page."""
