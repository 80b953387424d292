"""Locust-free presentation: the run page, the summary math and the console screens."""
