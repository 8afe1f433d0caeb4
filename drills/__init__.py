"""Drills (应急演练): scenario files of faults, injected into a simulated district, then scored."""
