# -*- test-case-name: tests -*-
"""
tests.
"""
