"""The core: accounts, events, sessions, profiles, identity, limits and times (pure)."""
