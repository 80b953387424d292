"""Command-line helpers for testing chatbots that run on AWS: discovery, test users, and .env set-up."""
