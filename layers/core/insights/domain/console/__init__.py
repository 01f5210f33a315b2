"""The console's pure part: what a profile change adds to the aggregates, the user list."""
