# -*- test-case-name: tests -*-
"""
tests.tools.
"""
