"""Tests of shapes/."""
