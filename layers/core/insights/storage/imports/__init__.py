"""Storage of imports: job items, the bucket and the continuation queue."""
