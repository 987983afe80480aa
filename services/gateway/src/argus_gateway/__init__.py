"""Argus WebSocket gateway."""
