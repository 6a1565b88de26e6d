"""Datasets and training runs are added by the datasets and training issues."""
