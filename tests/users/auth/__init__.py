"""Tests of users/auth/."""
