"""Admission control in front of the origin: an adaptive concurrency limit and a priority queue.

Sans-io: the data plane calls `AdmissionController.try_admit` before a request goes to the origin,
`release` when the origin is done with it, `expire` from its sweeper and `cancel` when a queued client
leaves; every call takes `now` (monotonic seconds) and returns what the data plane must act on.
"""
