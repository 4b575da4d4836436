"""The registry service: collectors, their identity and credentials, and admin approval.

Gateways ask it to decide each collector handshake and keep a watch open for state
changes; admins (outpostctl) list, register, enable, disable and remove collectors.
"""
