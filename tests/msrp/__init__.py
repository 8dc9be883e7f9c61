# -*- test-case-name: tests -*-
"""
tests.msrp.
"""
