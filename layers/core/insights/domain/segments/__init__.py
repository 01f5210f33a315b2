"""Segments: rules, the one evaluator, index entries and the query planner (pure, no boto3)."""
