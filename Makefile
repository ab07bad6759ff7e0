# Build, package and deploy the Lambda stack (docs/deploy.md). Tests: scripts/test.
#   make build                 cargo-lambda: target/lambda/bootstrap/bootstrap.zip (arm64)
#   make build-zig             the same zip with cargo-zigbuild, without cargo-lambda
#   make package               offline: CloudFormation in .serverless/ (no AWS account), linted
#   make deploy STAGE=prod     build + scripts/deploy.sh (stack, site, config.js, invalidation)
#   make remove STAGE=prod     scripts/remove.sh
#   make waf STAGE=prod        AWS WAF web ACL (scripts/waf-web-acl.yml) in us-east-1; prints the
#                              ARN to deploy with: OSLS_ARGS='--param="wafWebAclArn=<ARN>"'
# Extra osls arguments: make deploy OSLS_ARGS='--param="alarmEmail=me@example.com"'
STAGE ?= dev
REGION ?= us-east-2
BUILD ?= build
OSLS_ARGS ?=
ARTIFACT := target/lambda/bootstrap/bootstrap.zip
AARCH64 := aarch64-unknown-linux-gnu
OSLS := node_modules/.bin/osls
# The web ACL: scope CLOUDFRONT exists only in us-east-1, whatever REGION the stage is in.
WAF_REGION := us-east-1
WAF_STACK ?= chatbot-$(STAGE)-waf
WAF_RATE_LIMIT ?= 300
WAF_WINDOW_SEC ?= 300

.PHONY: build build-zig package deploy remove waf

build:
	cargo lambda build --profile lambda-release --arm64 --output-format zip --bin bootstrap
	@ls -l $(ARTIFACT)

build-zig:
	cargo zigbuild --profile lambda-release --target $(AARCH64) --bin bootstrap
	scripts/zip-bootstrap target/$(AARCH64)/lambda-release/bootstrap $(ARTIFACT)

$(OSLS):
	npm ci --no-audit --no-fund --loglevel=error

package: | $(OSLS)
	@test -f $(ARTIFACT) || { echo "no $(ARTIFACT): run make build (or make build-zig) first" >&2; exit 1; }
	$(OSLS) package --stage $(STAGE) --region $(REGION) \
	  --param="artifact=$(ARTIFACT)" $(OSLS_ARGS)
	@if [ -x .venv-test/bin/cfn-lint ]; then \
	  .venv-test/bin/cfn-lint .serverless/cloudformation-template-update-stack.json --ignore-checks W3005; \
	else echo "cfn-lint not installed (scripts/setup-test-deps installs it); skipped the lint"; fi

deploy: $(BUILD) | $(OSLS)
	scripts/deploy.sh --stage $(STAGE) --region $(REGION) --skip-build -- $(OSLS_ARGS)

remove: | $(OSLS)
	scripts/remove.sh --stage $(STAGE) --region $(REGION)

waf:
	aws cloudformation deploy --region $(WAF_REGION) --stack-name $(WAF_STACK) \
	  --template-file scripts/waf-web-acl.yml --no-fail-on-empty-changeset \
	  --parameter-overrides AclName=$(WAF_STACK) RateLimit=$(WAF_RATE_LIMIT) EvaluationWindowSec=$(WAF_WINDOW_SEC)
	@arn=$$(aws cloudformation describe-stacks --region $(WAF_REGION) --stack-name $(WAF_STACK) \
	  --query "Stacks[0].Outputs[?OutputKey=='WebAclArn'].OutputValue" --output text) && \
	echo "$$arn" && \
	echo "attach it: make deploy STAGE=$(STAGE) OSLS_ARGS='--param=\"wafWebAclArn=$$arn\"'" >&2
