"""Tests of users/http/."""
