"""Alerts grouped into incidents: the models, the lifecycle rules and the stores that keep them."""
