"""The ``tierwise`` command and the installation's settings (home, MLflow, stores, threads).

``tierwise.cli`` is the composition root: it wires the other packages, and none imports it.
"""
