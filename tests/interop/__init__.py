# -*- test-case-name: tests -*-
"""
tests.interop.
"""
