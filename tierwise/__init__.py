"""The ``tierwise`` command: the composition root that wires features, training and serving."""
