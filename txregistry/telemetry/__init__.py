"""
What the registry tells its operator about itself: the debug listener
(health, counters, Prometheus metrics) and OpenTelemetry traces.
"""
