"""Generated Python modules of the client protocol (from proto/*.proto); do not edit by hand.

Named ``tickfan_proto`` rather than ``proto`` because ``proto`` is the import name of proto-plus.
Regenerate with ``make proto``; tests/test_proto_fresh.py fails when these files are stale.
"""
