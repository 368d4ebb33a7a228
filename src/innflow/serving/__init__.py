"""The scoring service: app factory, request parsing, prediction core, metrics."""
