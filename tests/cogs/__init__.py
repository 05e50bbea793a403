"""Each feature's cog, against light fakes (tests/cog_fakes.py)."""
