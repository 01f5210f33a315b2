"""Insights: user profiles and segmentation on AWS serverless."""

__version__ = "0.1.0"
