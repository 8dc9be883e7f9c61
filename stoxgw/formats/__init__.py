# -*- test-case-name: tests -*-
"""
stoxgw.formats.
"""
