# -*- test-case-name: tests -*-
"""
tests.interworking.
"""
