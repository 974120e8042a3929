"""Input data: the contract, validation, demo data, features, labels and value tiers."""
