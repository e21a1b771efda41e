"""Offline checks of the stack's AWS policies: its rendered policies, the calls the code makes, and an evaluator."""
