"""Measurements beyond Locust's rows, per protocol, per worker and for the machine."""
