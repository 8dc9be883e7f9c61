# -*- test-case-name: tests -*-
"""
tests.xmpp.
"""
