# -*- test-case-name: tests -*-
"""
stoxgw.chat.
"""
