"""Tests of users/."""
