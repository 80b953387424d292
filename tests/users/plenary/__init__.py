"""Tests of users/plenary/."""
