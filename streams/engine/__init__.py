"""The pure application layer: bytes in, plans and decisions out.

Nothing here imports faust, aiokafka or redis, directly or through another module (a test
checks it): the worker, the file replay, the benchmarks and the tests all run this code,
and it must run without a broker. The Kafka clients and the faust worker call in; nothing
here calls out.
"""
