"""Helpers that tests import: real servers on loopback, trees, mail and value builders.

Test modules import from here and from conftest fixtures, never from each other.
"""
