"""The BentoML service, next-best-action policy, stores, batch scoring and monitoring."""
