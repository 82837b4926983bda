"""Fault suite (Issue 3): the real processes under failures, checked for lost, duplicated or half-recorded work."""
