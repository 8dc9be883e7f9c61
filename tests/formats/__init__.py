# -*- test-case-name: tests -*-
"""
tests.formats.
"""
