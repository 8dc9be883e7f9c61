# -*- test-case-name: tests -*-
"""
stoxgw.interworking.
"""
