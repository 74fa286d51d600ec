"""The control process: the one place that sees the whole shield.

Workers send it one message a second (detector/counters.WorkerSecond, over a datagram socket the
supervisor made before forking); it merges them, runs the detector (modes, incidents, signatures) and
writes what the workers must apply into a small state file they poll (control/state.py). It never sits
on a request's path: if it is slow or gone, workers keep serving with the last state they read.
"""
