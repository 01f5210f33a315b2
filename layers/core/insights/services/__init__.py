"""Use cases: each handler calls one of these; they call the domain and storage."""
