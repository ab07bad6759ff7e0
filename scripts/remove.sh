#!/usr/bin/env bash
# Removes one stage: empties the site bucket (CloudFormation cannot delete a bucket with
# objects), then `osls remove` deletes the stack — functions, API, CloudFront, alarms, dashboard,
# log groups and the deployment bucket.
#   scripts/remove.sh [--stage dev] [--region us-east-2]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[remove] %s\n' "$*" >&2; }
die() { printf '[remove] error: %s\n' "$*" >&2; exit 1; }

STAGE=${STAGE:-dev}
REGION=${REGION:-us-east-2}
while [ $# -gt 0 ]; do
  case $1 in
    --stage) STAGE=$2; shift 2 ;;
    --region) REGION=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done

command -v aws >/dev/null || die "the AWS CLI (aws) is needed"
[ -x node_modules/.bin/osls ] || npm ci --no-audit --no-fund --loglevel=error

stack="chatbot-$STAGE"
bucket=$(aws cloudformation describe-stacks --region "$REGION" --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='SiteBucketName'].OutputValue" --output text 2>/dev/null || true)
if [ -n "$bucket" ] && [ "$bucket" != None ]; then
  log "emptying s3://$bucket"
  aws s3 rm "s3://$bucket" --recursive --region "$REGION" >/dev/null
fi
log "removing stack $stack in $REGION (CloudFront takes several minutes to delete)"
node_modules/.bin/osls remove --stage "$STAGE" --region "$REGION"
log "done. Log groups went with the stack; custom metrics already sent age out of CloudWatch on their own."
