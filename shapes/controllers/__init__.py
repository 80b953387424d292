"""Pure load controllers (no Locust, no network): window statistics, PID, breakpoint judge, arrival schedule.

Each is a plain class driven with explicit ``now`` times and measurements; the LoadTestShape glue adapts them.
"""
