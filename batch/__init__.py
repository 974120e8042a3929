"""The nightly batch: score every customer, write parquet, refresh the online store."""
