"""Kafka outside faust: client security, topic administration, ACLs and the one factory of
aiokafka producers and consumers that the commands and policy control use."""
