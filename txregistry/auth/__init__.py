"""
Authentication and access control.
"""
