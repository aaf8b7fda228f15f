"""The faust worker: the only package that imports faust.

It consumes raw bytes, reads each subject's stored state, hands both to
:mod:`streams.engine.plan`, sends what the plan says, and only then stores the new state
(at least once). Business rules live in :mod:`policy` and :mod:`streams.engine`, never here.
"""
