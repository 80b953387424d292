"""Tests of users/audio/."""
