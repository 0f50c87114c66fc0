"""The hub side of hubstack: code that runs inside the hub container."""
