"""The one storage layer: every DynamoDB access goes through this package."""
