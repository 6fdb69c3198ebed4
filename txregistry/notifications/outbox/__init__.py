"""
The durable outbox: the journal every event is written to before it is
acknowledged, and each endpoint's cursor and dead-letter file.
"""
