"""Salesforce: the connection, the API client, syncs in checkpointed slices."""
