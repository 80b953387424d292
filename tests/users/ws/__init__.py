"""Tests of users/ws/."""
