"""Executors: the plugins that carry out deployment steps (see base.py for the contract, registry.py to add one)."""
