"""Tests of users/common/."""
