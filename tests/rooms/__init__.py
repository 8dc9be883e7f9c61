# -*- test-case-name: tests -*-
"""
tests.rooms.
"""
