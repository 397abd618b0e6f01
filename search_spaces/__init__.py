"""The shipped search spaces: one YAML file per architecture family (data, not code)."""
