#!/usr/bin/env bash
# Deploys one stage end to end: build the Lambda zip, `osls deploy` the stack, upload frontend/
# with a config.js written from the stack outputs, invalidate CloudFront. docs/deploy.md has the
# prerequisites (AWS credentials, Bedrock model access, cargo-lambda or cargo-zigbuild).
#
#   scripts/deploy.sh [--stage dev] [--region us-east-2] [--skip-build] [-- <osls args>]
#       e.g. scripts/deploy.sh --stage prod -- --param="alarmEmail=oncall@example.com"
#   scripts/deploy.sh print-config API_URL STREAM_URL
#       prints the config.js for those endpoints (e.g. to point a local copy of the page at a
#       deployed stage); empty URLs mean "same origin", as in the committed frontend/config.js.
#
# Environment: STAGE, REGION (defaults for the flags), BUILD (make target, default build;
# build-zig uses cargo-zigbuild instead of cargo-lambda), AWS_PROFILE etc. for credentials.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }

# config.js from two endpoint URLs. Only plain https URLs (or empty) are accepted, so the
# values can go into a JavaScript string literal without escaping.
print_config() {
  local api=$1 stream=$2 url_re='^(https://[A-Za-z0-9.:/_-]+)?$'
  [[ $api =~ $url_re ]] || die "API URL is not a plain https URL: $api"
  [[ $stream =~ $url_re ]] || die "stream URL is not a plain https URL: $stream"
  printf '// Written by scripts/deploy.sh from the stack outputs.\n'
  printf 'window.CHATBOT_CONFIG = { apiBaseUrl: "%s", streamUrl: "%s" };\n' "${api%/}" "${stream%/}"
}

if [ "${1:-}" = print-config ]; then
  [ $# -eq 3 ] || die "usage: $0 print-config API_URL STREAM_URL"
  print_config "$2" "$3"
  exit 0
fi

STAGE=${STAGE:-dev}
REGION=${REGION:-us-east-2}
BUILD=${BUILD:-build}
skip_build=false
osls_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --stage) STAGE=$2; shift 2 ;;
    --region) REGION=$2; shift 2 ;;
    --skip-build) skip_build=true; shift ;;
    --) shift; osls_args=("$@"); break ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
done

command -v aws >/dev/null || die "the AWS CLI (aws) is needed: see docs/deploy.md"
command -v node >/dev/null || die "Node.js >= 20.19 is needed for osls: see docs/deploy.md"
aws sts get-caller-identity --region "$REGION" >/dev/null \
  || die "no working AWS credentials (aws sts get-caller-identity failed)"

if [ ! -x node_modules/.bin/osls ]; then
  log "installing osls (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "$skip_build" = false ]; then
  log "building the Lambda artifact (make $BUILD)"
  make "$BUILD"
fi
[ -f target/lambda/bootstrap/bootstrap.zip ] || die "no target/lambda/bootstrap/bootstrap.zip: run make build"

log "deploying stage $STAGE to $REGION"
node_modules/.bin/osls deploy --stage "$STAGE" --region "$REGION" ${osls_args[@]+"${osls_args[@]}"}

stack="chatbot-$STAGE"
output() {
  aws cloudformation describe-stacks --region "$REGION" --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
site=$(output SiteUrl)
bucket=$(output SiteBucketName)
distribution=$(output DistributionId)
dashboard=$(output DashboardUrl)

log "uploading frontend/ to s3://$bucket"
site_dir=$(mktemp -d)
trap 'rm -rf "$site_dir"' EXIT
cp -R frontend/. "$site_dir/"
# Same origin: the distribution serves the page and routes /api/* (HTTP API) and
# /api/chat/stream (Function URL), so both URLs stay empty (relative /api/...). The page always
# sends the body hash (x-amz-content-sha256) the stream origin's OAC needs.
print_config "" "" >"$site_dir/config.js"
# Assets may be cached for minutes; the page and its config must be fetched fresh.
aws s3 sync "$site_dir/" "s3://$bucket/" --region "$REGION" --delete \
  --exclude index.html --exclude config.js --cache-control "public, max-age=300"
aws s3 cp "$site_dir/index.html" "s3://$bucket/index.html" --region "$REGION" \
  --cache-control "no-cache" --content-type "text/html; charset=utf-8"
aws s3 cp "$site_dir/config.js" "s3://$bucket/config.js" --region "$REGION" \
  --cache-control "no-cache" --content-type "text/javascript; charset=utf-8"

log "invalidating CloudFront $distribution"
aws cloudfront create-invalidation --distribution-id "$distribution" --paths "/*" \
  --query Invalidation.Id --output text >/dev/null

cat <<DONE
Deployed chatbot stage $STAGE ($REGION)
  site:      $site   (CloudFront may take a few minutes on a first deploy)
  API:       $site/api/chat, $site/api/health (CloudFront -> HTTP API)
  stream:    $stream/api/chat/stream (CloudFront -> Function URL)
  dashboard: $dashboard
DONE
