# -*- test-case-name: tests -*-
"""
stoxgw.msrp.
"""
