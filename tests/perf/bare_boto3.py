"""The baseline consumer: `python -m tests.perf.bare_boto3 ENDPOINT QUEUE_URL POLLERS`.

`POLLERS` threads share one boto3 client and loop on ReceiveMessage (10) then DeleteMessageBatch,
nothing else, until the process is terminated. It prints `ready` once the client has answered, so
that the benchmark starts its clock on a warm process. A process of its own, so that its CPU time
can be read from /proc like the processor's.
"""

from __future__ import annotations

import sys
import threading

import boto3
from botocore.config import Config


def main(endpoint: str, queue_url: str, pollers: int) -> None:
    """Poll until killed."""
    client = boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(max_pool_connections=pollers + 2),
    )
    client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])

    def poll() -> None:
        while True:
            messages = client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if messages:
                client.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(messages)
                    ],
                )

    for _ in range(pollers):
        threading.Thread(target=poll, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
