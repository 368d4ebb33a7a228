"""The team's web page about a model: versions, aliases, monitoring, simulations."""
