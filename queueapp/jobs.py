"""Periodic jobs of the background worker (see queueapp.worker)."""
