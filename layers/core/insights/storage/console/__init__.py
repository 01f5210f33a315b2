"""Storage of the console: aggregate items and the by_uuid user list."""
