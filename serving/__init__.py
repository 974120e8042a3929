"""The online service: HTTP app and schemas, the next-best-action policy, suggestions, reasons,
the online store's reads and the decision log."""
