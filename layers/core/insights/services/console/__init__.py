"""The console's use cases: its reads and the aggregates kept from the users stream."""
