"""Measure one watcher round over 200 active Bedrock jobs on a moto server, against bare boto3 polling.

Starts moto's server on a free local port, creates N Bedrock fine-tuning jobs through the real backend
(data in S3, real boto3), records them in a fresh store as active, then times:

- bare: N sequential `get_model_customization_job` calls with one boto3 client, nothing written: the
  floor for asking the provider about every job;
- round: `watcher.poll_round`, which claims the due jobs with a lease, polls each (several at once),
  lists the metrics files, and writes state, events and metrics through the store's write path.

Two rounds are timed: the first (every job new to the watcher, whose metric files are first looked for about
30 s later, spreading that work) and the next (status unchanged). Target (issue 8): a round under 5 s at 200 active jobs. The last line
is `ratio=<slower round / bare>`.

    .venv/bin/python benchmarks/watch_bench.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moto.server import ThreadedMotoServer  # noqa: E402

from workbench.domain.jobs import BackendName, JobState, LaunchRequest  # noqa: E402
from workbench.providers import aws  # noqa: E402
from workbench.providers.bedrock import BedrockBackend  # noqa: E402
from workbench.services import watcher  # noqa: E402
from workbench.store import Store  # noqa: E402
from workbench.store import jobs as job_rows  # noqa: E402

BUCKET = "bench-bucket"
MODEL = "amazon.nova-micro-v1:0:128k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1", "AWS_EC2_METADATA_DISABLED": "true",
    })
    try:
        work = Path(tempfile.mkdtemp(prefix="watch-bench-"))
        data = work / "train.jsonl"
        data.write_text('{"schemaVersion": "bedrock-conversation-2024", "messages": []}\n')
        aws.make_client("s3").create_bucket(Bucket=BUCKET)
        backend = BedrockBackend(bedrock=aws.make_client("bedrock"), s3=aws.make_client("s3"),
                                 s3_uri=f"s3://{BUCKET}/wb", role_arn="arn:aws:iam::123456789012:role/bench")
        store = Store(work / "bench.db")
        started = time.perf_counter()
        names = []
        for i in range(args.jobs):
            name = f"bench-{i:04d}"
            sub = backend.submit(LaunchRequest(job_name=name, base_model=MODEL, train_file=str(data)))
            with store.write() as db:
                row = job_rows.insert_job(db, name=name, backend=BackendName.BEDROCK.value, base_model=MODEL,
                                          state=JobState.RUNNING.value)
                job_rows.update_job(db, row.id, provider_job_id=sub.provider_job_id)
            names.append(sub.provider_job_id)
        print(f"created {args.jobs} jobs in {time.perf_counter() - started:.1f} s")

        client = aws.make_client("bedrock")
        t0 = time.perf_counter()
        for name in names:
            client.get_model_customization_job(jobIdentifier=name)
        bare = time.perf_counter() - t0

        result = watcher.poll_round(store, backends=lambda _name: backend)
        assert result.polled == args.jobs, result
        assert not result.errors, result.errors[:3]
        with store.write() as db:  # make every job due again, as the next round after the polling interval
            db.execute("UPDATE jobs SET next_poll_at = NULL")
        steady = watcher.poll_round(store, backends=lambda _name: backend)
        print(f"bare boto3 polling: {bare:.2f} s for {args.jobs} jobs ({bare / args.jobs * 1000:.1f} ms/job)")
        print(f"first watcher round (every job new to it):       {result.seconds:.2f} s (target < 5 s)")
        print(f"next watcher round (status unchanged):            {steady.seconds:.2f} s (target < 5 s)")
        print(f"ratio={max(result.seconds, steady.seconds) / bare:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
