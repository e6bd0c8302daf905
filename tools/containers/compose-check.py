"""Writes the compose file of the container check: docker/compose.yml with the images that cannot be pulled here
swapped for the locally built ones, for podman-compose. Usage: compose-check.py COMPOSE_IN OUT PG_IMAGE S3_IMAGE
APP_IMAGE. Changes, and only these: postgres runs the PostgreSQL stand-in (same environment, volumes, init scripts);
the MinIO service becomes the Ceph RGW stand-in with the migrator's credentials, on the port the migrator uses;
create-bucket creates the bucket with the app image's AWS SDK, retrying while the gateway starts; the migrator uses
the image built by check.sh instead of a build. Health checks are dropped (podman's need systemd timers), so
check.sh starts the services in order itself. Relative paths become absolute (the file is written elsewhere)."""
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

source, out, pg_image, s3_image, app_image = sys.argv[1:6]
base = Path(source).resolve().parent
compose = yaml.safe_load(Path(source).read_text())
services = compose["services"]
migrator = services["migrator"]
env = migrator["environment"]
s3_port = urlparse(env["S3_URL"]).port or 80

postgres = services["postgres"]
postgres["image"] = pg_image
postgres.pop("healthcheck", None)
postgres["volumes"] = [
    str((base / v.split(":")[0]).resolve()) + ":" + v.split(":", 1)[1] if v.startswith(".") else v
    for v in postgres["volumes"]
]

services["s3"] = {
    "image": s3_image,
    "environment": {
        "RGW_PORT": str(s3_port),
        "S3_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
        "S3_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
    },
    "volumes": ["s3data:/var/lib/lo-migrate-ceph"],
}

create_bucket = """
const { S3Client, CreateBucketCommand } = require("@aws-sdk/client-s3");
const client = new S3Client({ endpoint: process.env.S3_URL, region: "us-east-1", forcePathStyle: true });
const attempt = async (left) => {
  try { await client.send(new CreateBucketCommand({ Bucket: process.env.S3_BUCKET })); console.log("bucket created"); }
  catch (e) {
    if (e.name === "BucketAlreadyOwnedByYou") { console.log("bucket exists"); return; }
    if (left === 0) { console.error("CreateBucket failed: " + e.message); process.exit(1); }
    await new Promise((r) => setTimeout(r, 2000)); return attempt(left - 1);
  }
};
attempt(60);
"""
services["create-bucket"] = {
    "image": app_image,
    "entrypoint": ["node", "-e", create_bucket],
    "environment": {k: env[k] for k in ("S3_URL", "S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")},
    "restart": "no",
}

migrator.pop("build", None)
migrator["image"] = app_image
migrator["depends_on"] = ["postgres", "create-bucket"]

Path(out).write_text(yaml.safe_dump(compose, sort_keys=False))
