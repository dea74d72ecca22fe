"""Everything that speaks SQS: the `Source` protocol and its messages, the client and what its
errors mean, the source the processor consumes, dead letters, and batch sending.

Nothing is imported here, so that `exporter.sqs.messages` (all the consume loop needs) costs no
AWS library at import time.
"""
