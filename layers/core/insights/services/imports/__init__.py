"""File imports: jobs registered from S3, run in checkpointed slices."""
