#!/usr/bin/env bash
# Point Chatswarm at your AWS stack in one go: checks your AWS credentials (sts get-caller-identity), finds your
# API Gateway URLs and Cognito pools, and writes the chosen values into .env (see aws_setup/setup_env.py).
#
#   bash aws_setup/setup_aws.sh                                  # asks when there is a choice
#   bash aws_setup/setup_aws.sh --api chat --pool users --yes    # never asks
#   bash aws_setup/setup_aws.sh --profile staging --region eu-west-1 --env-file .env.staging
#
# The AWS endpoint comes from boto3's usual chain (AWS_ENDPOINT_URL, the profile), so it works against
# LocalStack or moto too. Exit code 2 with one line when something is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$here/../.venv/bin/python" ]; then python="$here/../.venv/bin/python"; else python=python3; fi
fi
exec "$python" "$here/setup_env.py" "$@"
