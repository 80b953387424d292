"""Tests of demobot/."""
