"""hubstack: a single-host JupyterHub distribution for controlled-access data."""

__version__ = "0.1.0"
