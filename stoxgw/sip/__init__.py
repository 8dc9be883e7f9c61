# -*- test-case-name: tests -*-
"""
stoxgw.sip.
"""
