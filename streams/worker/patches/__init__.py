"""Fixes to faust and aiokafka installed when the worker starts (see each module's opening
comment for what was lost without it and how it was found)."""
