"""Simulated devices: a district brought to life on the contract's topics, and drills."""
