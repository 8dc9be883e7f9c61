# -*- test-case-name: tests -*-
"""
stoxgw.rooms.
"""
