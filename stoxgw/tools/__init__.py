# -*- test-case-name: tests -*-
"""
stoxgw.tools.
"""
