"""Tests of users/llm/."""
