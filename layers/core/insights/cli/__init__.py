"""The `insights` command: one module per command group."""
