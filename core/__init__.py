"""Locust-free pieces every layer shares: errors, options, TLS, the SLO language, histograms, token checks."""
