"""Storage of integrations: connection items and their credentials in Secrets Manager."""
