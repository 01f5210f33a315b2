"""The team: people signing in to the console with the account's IdP, roles, the audit log."""
