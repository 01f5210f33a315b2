"""The core use cases: ingest, closing, the sweep, retention, users, accounts, keys, attributes."""
