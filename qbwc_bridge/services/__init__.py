"""Use cases shared by the command line, the HTTP API and the tools, so they cannot drift.

Each module is one area (companies, orders, inventory); each function opens its own
transaction on the store and returns plain values or domain objects.
"""
