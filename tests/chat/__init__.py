# -*- test-case-name: tests -*-
"""
tests.chat.
"""
