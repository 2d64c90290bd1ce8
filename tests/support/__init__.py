"""Test support: scripted servers and fixtures shared by the test suites."""
