"""Segments: definitions, listing and counting, and the index kept from the users stream."""
