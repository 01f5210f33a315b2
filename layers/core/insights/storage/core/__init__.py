"""Storage of the core: tables' models, sessions and profiles, accounts and keys, queues."""
