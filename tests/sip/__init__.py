# -*- test-case-name: tests -*-
"""
tests.sip.
"""
