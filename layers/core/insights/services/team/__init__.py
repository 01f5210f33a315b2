"""The team's use cases: console sign-in, sessions, the provider and members, the audit log."""
