//! The deploy template, offline: `serverless.yml` packaged by osls (pinned in package.json) with
//! a real artifact made by `scripts/zip-bootstrap` from the compiled binary, linted by cfn-lint,
//! and checked against the deploy issue's rules (tests/deploy/checks/): runtime and tracing,
//! least-privilege IAM for exactly the configured models and exactly the state store's actions on
//! its table, alarms with SNS actions and runbook links that resolve, the streaming Function URL,
//! the private bucket behind CloudFront OAC, `/api/*` and the stream behind CloudFront with the
//! origin secret, the state table equal to `chatbot_service::store::schema`, the budgets, reserved
//! concurrency, the optional WAF web ACL, and one source of truth for metric names
//! (`chatbot_service::telemetry::catalog`). The second half feeds the checker broken copies of the
//! template and shows each mistake is reported.
//!
//! Needs `scripts/setup-test-deps` (osls, cfn-lint, Node.js); no AWS account.

mod deploy;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use chatbot_service::store::{IAM_ACTIONS, schema};
use deploy::artifact::{self, Entry};

use deploy::checks::{self, Expect};
use deploy::markdown;
use deploy::template::Template;
use deploy::tools::{self, ScratchDir, repo};

const REGION: &str = "us-east-2";
const MICRO: &str = "us.amazon.nova-micro-v1:0";
const LITE: &str = "us.amazon.nova-lite-v1:0";
const HAIKU: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const WAF_ACL: &str = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/abc";

struct Packaged {
    zip_entries: Vec<Entry>,
    binary_size: u64,
    /// Stage `dev` with the defaults: one model.
    default: Value,
    /// Stage `variants`: two weighted variants and a fallback model, as deploy parameters.
    variants: Value,
    /// Stage `edge`: a WAF web ACL, and the origin secret rotated once (green active, generation 2).
    edge: Value,
}

/// Zips the compiled binary with scripts/zip-bootstrap, then packages the stages in parallel
/// with that zip as the function code (once per test run; the scratch files go right after).
fn packaged() -> &'static Packaged {
    static PACKAGED: OnceLock<Packaged> = OnceLock::new();
    PACKAGED.get_or_init(|| {
        let scratch = ScratchDir::new("artifact");
        let zip = scratch.0.join("bootstrap.zip");
        let binary = Path::new(env!("CARGO_BIN_EXE_bootstrap"));
        artifact::zip_bootstrap(binary, &zip, 0);
        let zip_entries = artifact::entries(&zip).expect("read the zip");
        let variants_param = format!("modelVariants=micro={MICRO}:90,lite={LITE}:10");
        let fallback_param = format!("fallbackModelId={HAIKU}");
        let waf_param = format!("wafWebAclArn={WAF_ACL}");
        let (default, variants, edge) = std::thread::scope(|s| {
            let a = s.spawn(|| tools::package("dev", REGION, &zip, &[]));
            let b = s.spawn(|| {
                tools::package(
                    "variants",
                    REGION,
                    &zip,
                    &[&variants_param, &fallback_param],
                )
            });
            let c = s.spawn(|| {
                tools::package(
                    "edge",
                    REGION,
                    &zip,
                    &[
                        &waf_param,
                        "originSecretActive=green",
                        "originSecretGreenGeneration=2",
                    ],
                )
            });
            let join = |h: std::thread::ScopedJoinHandle<'_, Value>| {
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            };
            (join(a), join(b), join(c))
        });
        Packaged {
            zip_entries,
            binary_size: std::fs::metadata(binary).unwrap().len(),
            default,
            variants,
            edge,
        }
    })
}

fn runbooks() -> String {
    std::fs::read_to_string(repo().join("docs/runbooks.md")).expect("docs/runbooks.md")
}

fn expect() -> Expect {
    let md = runbooks();
    Expect {
        runbook_anchors: markdown::anchors(&md),
        runbook_queries: markdown::code_blocks(&md, "logsinsights"),
        log_retention_days: 14,
        memory_mb: 128,
        us_route_regions: vec!["us-east-1", "us-east-2", "us-west-2"],
    }
}

fn template(doc: &Value) -> Template {
    Template::new(doc.clone(), REGION)
}

fn assert_clean(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "problems:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------- the real template

#[test]
fn packaged_template_lints_clean_and_passes_every_check() {
    let p = packaged();
    tools::lint(&p.default).unwrap_or_else(|e| panic!("{e}"));
    let t = template(&p.default);
    assert_clean(checks::all(&t, &expect()));
    assert_eq!(checks::configured_models(&t), [MICRO]);
    // The optional variables are left out, not set empty.
    for (_, f) in t.of_type("AWS::Lambda::Function") {
        let env = t.environment(f);
        assert!(!env.contains_key("CHATBOT_MODEL_VARIANTS"), "{env:?}");
        assert!(!env.contains_key("CHATBOT_FALLBACK_MODEL_ID"), "{env:?}");
        assert_eq!(env["CHATBOT_SERVICE_NAME"], "chatbot-dev");
    }
    // No e-mail given: no subscription.
    assert_eq!(t.condition("HasAlarmEmail"), Some(false));
    // No WAF unless asked for: the property is left out.
    assert_eq!(t.condition("HasWafWebAcl"), Some(false));
    assert_eq!(t.chosen(&distribution_config(&p.default)["WebACLId"]), None);
}

fn distribution_config(doc: &Value) -> &Value {
    &doc["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]
}

fn origin<'a>(doc: &'a Value, id: &str) -> &'a Value {
    distribution_config(doc)["Origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["Id"] == id)
        .unwrap_or_else(|| panic!("no origin {id}"))
}

fn behavior<'a>(doc: &'a Value, path: &str) -> &'a Value {
    distribution_config(doc)["CacheBehaviors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["PathPattern"] == path)
        .unwrap_or_else(|| panic!("no behavior {path}"))
}

/// The x-origin-verify value an origin sends, as the stack would set it.
fn origin_secret_sent(doc: &Value, origin_id: &str) -> String {
    let header = &origin(doc, origin_id)["OriginCustomHeaders"][0];
    assert_eq!(header["HeaderName"], "x-origin-verify");
    template(doc).decide(&header["HeaderValue"]).unwrap()
}

#[test]
fn state_table_is_the_store_schema_and_iam_is_exactly_its_actions_on_it() {
    let doc = &packaged().default;
    let t = template(doc);
    let table = &doc["Resources"]["StateTable"];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    let tp = &table["Properties"];
    assert_eq!(
        tp["KeySchema"],
        json!([
            {"AttributeName": schema::PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": schema::SORT_KEY, "KeyType": "RANGE"},
        ])
    );
    assert_eq!(
        tp["AttributeDefinitions"],
        json!([
            {"AttributeName": schema::PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": schema::SORT_KEY, "AttributeType": "S"},
        ])
    );
    assert_eq!(
        tp["TimeToLiveSpecification"],
        json!({"AttributeName": schema::TTL_ATTRIBUTE, "Enabled": true})
    );
    assert_eq!(tp["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        tp["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(tp["SSESpecification"]["SSEEnabled"], true);
    // Both functions: the table, the budgets, fail-closed by default.
    for (_, f) in t.of_type("AWS::Lambda::Function") {
        let env = t.environment(f);
        assert_eq!(env["CHATBOT_STATE_TABLE"], "${StateTable}");
        assert_eq!(env["CHATBOT_DAILY_BUDGET_USD"], "5");
        assert_eq!(env["CHATBOT_CLIENT_DAILY_BUDGET_USD"], "0.5");
        assert_eq!(env["CHATBOT_BUDGET_FAIL_OPEN"], "false");
        assert!(!env.contains_key("CHATBOT_BACKEND"), "{env:?}");
    }
    // The one DynamoDB statement: exactly the store's actions, on exactly the table.
    let statements = doc["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let dynamodb: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Action"].to_string().contains("dynamodb:"))
        .collect();
    assert_eq!(dynamodb.len(), 1, "{dynamodb:?}");
    let mut actions: Vec<&str> = dynamodb[0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    actions.sort_unstable();
    let mut wanted = IAM_ACTIONS.to_vec();
    wanted.sort_unstable();
    assert_eq!(actions, wanted);
    assert_eq!(
        dynamodb[0]["Resource"],
        json!({"Fn::GetAtt": ["StateTable", "Arn"]})
    );
}

#[test]
fn api_and_stream_are_behind_cloudfront_with_the_origin_secret() {
    let doc = &packaged().default;
    let t = template(doc);
    let config = distribution_config(doc);
    let paths: Vec<&str> = config["CacheBehaviors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["PathPattern"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/api/chat/stream", "/api/*"]);
    assert_eq!(behavior(doc, "/api/*")["TargetOriginId"], "api");
    assert_eq!(
        behavior(doc, "/api/chat/stream")["TargetOriginId"],
        "stream"
    );
    assert_eq!(
        origin(doc, "api")["DomainName"],
        json!({"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.amazonaws.com"})
    );
    // Blue is active by default; the functions accept blue and green.
    let blue = "{{resolve:secretsmanager:${OriginSecretBlue}}}";
    let green = "{{resolve:secretsmanager:${OriginSecretGreen}}}";
    assert_eq!(origin_secret_sent(doc, "api"), blue);
    assert_eq!(origin_secret_sent(doc, "stream"), blue);
    for (_, f) in t.of_type("AWS::Lambda::Function") {
        let env = t.environment(f);
        assert_eq!(env["CHATBOT_ORIGIN_SECRETS"], format!("{blue},{green}"));
        assert_eq!(
            env["CHATBOT_HASH_KEY"],
            "{{resolve:secretsmanager:${HashKeySecret}}}"
        );
    }
    for id in ["OriginSecretBlue", "OriginSecretGreen", "HashKeySecret"] {
        let secret = &doc["Resources"][id];
        assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
        assert!(secret["Properties"].get("SecretString").is_none());
        assert_eq!(
            secret["Properties"]["GenerateSecretString"]["ExcludePunctuation"],
            true
        );
    }
    assert_eq!(
        doc["Resources"]["OriginSecretBlue"]["Properties"]["Name"],
        "chatbot-dev/origin-verify/blue-1"
    );
    // One origin request policy for both: the viewer's address, never Host.
    for path in ["/api/*", "/api/chat/stream"] {
        assert_eq!(
            behavior(doc, path)["OriginRequestPolicyId"],
            json!({"Ref": "ApiOriginRequestPolicy"})
        );
    }
    let headers = &doc["Resources"]["ApiOriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]
        ["HeadersConfig"];
    assert_eq!(headers["HeaderBehavior"], "whitelist");
    let names: Vec<String> = headers["Headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_ascii_lowercase())
        .collect();
    assert!(
        names.contains(&"cloudfront-viewer-address".to_owned()),
        "{names:?}"
    );
    assert!(!names.contains(&"host".to_owned()), "{names:?}");
    // Same origin: the page connects to 'self' only, and the HTTP API has no CORS.
    let csp = doc["Resources"]["SiteSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
        ["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
        .as_str()
        .unwrap();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(!csp.contains("execute-api"), "{csp}");
    assert!(
        doc["Resources"]["HttpApi"]["Properties"]
            .get("CorsConfiguration")
            .is_none()
    );
    // Reserved concurrency on both functions.
    assert_eq!(
        doc["Resources"]["ApiLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"],
        10
    );
    assert_eq!(
        doc["Resources"]["StreamLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"],
        10
    );
}

#[test]
fn waf_web_acl_and_a_rotated_origin_secret_are_deploy_parameters() {
    let doc = &packaged().edge;
    tools::lint(doc).unwrap_or_else(|e| panic!("{e}"));
    let t = template(doc);
    assert_clean(checks::all(&t, &expect()));
    // The web ACL is attached when the parameter is set.
    assert_eq!(t.condition("HasWafWebAcl"), Some(true));
    assert_eq!(
        t.decide(&distribution_config(doc)["WebACLId"]).as_deref(),
        Some(WAF_ACL)
    );
    // Rotation: green is now active on both origins, its name (and so its value) is new, and
    // the functions still accept both.
    let green = "{{resolve:secretsmanager:${OriginSecretGreen}}}";
    assert_eq!(origin_secret_sent(doc, "api"), green);
    assert_eq!(origin_secret_sent(doc, "stream"), green);
    assert_eq!(
        doc["Resources"]["OriginSecretGreen"]["Properties"]["Name"],
        "chatbot-edge/origin-verify/green-2"
    );
    for (_, f) in t.of_type("AWS::Lambda::Function") {
        assert!(t.environment(f)["CHATBOT_ORIGIN_SECRETS"].contains(green));
    }
    // A web ACL of the wrong scope is refused by the parameter's pattern before any deploy.
    let mut regional = doc.clone();
    regional["Parameters"]["WafWebAclArn"]["Default"] =
        json!("arn:aws:wafv2:us-east-2:123456789012:regional/webacl/x/abc");
    let lint = tools::lint(&regional).unwrap_err();
    assert!(lint.contains("E2015"), "{lint}");
}

/// Runs the stream path's CloudFront Function (cloudfront-js-2.0 is ES5.1 plus a few newer
/// features; this code uses none of them) with Node.js on every method.
#[test]
fn stream_function_lets_only_post_through() {
    let t = template(&packaged().default);
    let code = checks::endpoints::stream_function_code(&t).expect("the stream path's function");
    let harness = format!(
        "{code}\n         const out = {{}};\n         for (const method of ['POST', 'GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'DELETE']) {{\n           out[method] = handler({{ request: {{ method, uri: '/api/chat/stream', headers: {{}} }},\n                                   context: {{ requestId: 'req-1' }} }});\n         }}\n         console.log(JSON.stringify(out));\n"
    );
    let out = Command::new("node")
        .args(["-e", &harness])
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    // POST goes on to the origin unchanged.
    assert_eq!(results["POST"]["method"], "POST");
    assert!(results["POST"].get("statusCode").is_none());
    for method in ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"] {
        let r = &results[method];
        assert_eq!(r["statusCode"], 405, "{method}: {r}");
        assert_eq!(r["headers"]["allow"]["value"], "POST");
        let body: Value = serde_json::from_str(r["body"]["data"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert_eq!(body["error"]["requestId"], "req-1");
    }
}

#[test]
fn waf_template_lints_clean_and_limits_api_requests_per_address() {
    let file = repo().join("scripts/waf-web-acl.yml");
    // Scope CLOUDFRONT exists only in us-east-1.
    tools::lint_file(&file, &["us-east-1"]).unwrap_or_else(|e| panic!("{e}"));
    let doc = tools::cfn_yaml(&file);
    let acls: Vec<&Value> = doc["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::WAFv2::WebACL")
        .collect();
    let [acl] = acls.as_slice() else {
        panic!("expected one web ACL, found {}", acls.len());
    };
    let ap = &acl["Properties"];
    assert_eq!(ap["Scope"], "CLOUDFRONT");
    assert!(ap["DefaultAction"].get("Allow").is_some());
    let rules = ap["Rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "one rule ($1 a month each)");
    let rate = &rules[0]["Statement"]["RateBasedStatement"];
    assert_eq!(rate["AggregateKeyType"], "IP");
    assert!(rules[0]["Action"].get("Block").is_some());
    // The limit and window come from parameters with WAF's own bounds (reference.md §7).
    let param = |r: &Value| doc["Parameters"][r["Ref"].as_str().unwrap()].clone();
    let limit = param(&rate["Limit"]);
    assert!(limit["Default"].as_u64().unwrap() >= 10);
    assert_eq!(limit["MinValue"], 10);
    let window = param(&rate["EvaluationWindowSec"]);
    assert_eq!(window["AllowedValues"], json!([60, 120, 300, 600]));
    // Only API calls count: the page's own files do not.
    let scope = &rate["ScopeDownStatement"]["ByteMatchStatement"];
    assert_eq!(scope["SearchString"], "/api/");
    assert_eq!(scope["PositionalConstraint"], "STARTS_WITH");
    assert!(doc["Outputs"]["WebAclArn"].is_object());
}

/// `make waf` with a stand-in `aws` that records its arguments and answers describe-stacks.
#[test]
fn make_waf_deploys_the_web_acl_in_us_east_1_and_prints_its_arn() {
    let scratch = ScratchDir::new("make-waf");
    let calls = scratch.0.join("calls");
    let aws = scratch.0.join("aws");
    std::fs::write(
        &aws,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n             case \"$*\" in *describe-stacks*) echo '{WAF_ACL}' ;; esac\n",
            calls.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&aws).status().unwrap();
    let path = format!(
        "{}:{}",
        scratch.0.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("make")
        .args(["-s", "waf", "STAGE=prod"])
        .current_dir(repo())
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), WAF_ACL);
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("wafWebAclArn=")
    );
    let calls = std::fs::read_to_string(&calls).unwrap();
    let deploy = calls.lines().next().unwrap();
    for part in [
        "cloudformation deploy",
        "--region us-east-1",
        "--stack-name chatbot-prod-waf",
        "--template-file scripts/waf-web-acl.yml",
    ] {
        assert!(deploy.contains(part), "{part} not in {deploy}");
    }
    assert!(calls.lines().nth(1).unwrap().contains("--region us-east-1"));
}

#[test]
fn variants_are_a_deploy_parameter_and_iam_lists_exactly_their_models() {
    let p = packaged();
    tools::lint(&p.variants).unwrap_or_else(|e| panic!("{e}"));
    let t = template(&p.variants);
    // checks::iam compares the granted ARNs with the models the functions are configured with.
    assert_clean(checks::all(&t, &expect()));
    let mut wanted = vec![MICRO, LITE, HAIKU];
    wanted.sort();
    assert_eq!(checks::configured_models(&t), wanted);
    for (_, f) in t.of_type("AWS::Lambda::Function") {
        let env = t.environment(f);
        assert_eq!(
            env["CHATBOT_MODEL_VARIANTS"],
            format!("micro={MICRO}:90,lite={LITE}:10")
        );
        assert_eq!(env["CHATBOT_FALLBACK_MODEL_ID"], HAIKU);
    }
    // The dashboard's Bedrock widgets follow the same list.
    let body = checks::dashboard_body(&t).unwrap().to_string();
    for model in [MICRO, LITE, HAIKU] {
        assert!(
            body.contains(&format!("ModelId=\\\"{model}\\\"")),
            "{model} not on the dashboard"
        );
    }
}

#[test]
fn lambda_artifact_is_an_executable_bootstrap_at_the_zip_root() {
    let p = packaged();
    assert_clean(artifact::check_lambda_zip(&p.zip_entries, p.binary_size));
    let t = template(&p.default);
    for (id, f) in t.of_type("AWS::Lambda::Function") {
        let key = f["Properties"]["Code"]["S3Key"]
            .as_str()
            .unwrap_or_default();
        assert!(key.ends_with("/bootstrap.zip"), "{id} code is {key}");
    }
}

#[test]
fn deploy_script_writes_the_config_js_the_page_reads() {
    for script in [
        "scripts/deploy.sh",
        "scripts/remove.sh",
        "scripts/zip-bootstrap",
    ] {
        let ok = Command::new("bash")
            .arg("-n")
            .arg(repo().join(script))
            .status()
            .unwrap();
        assert!(ok.success(), "{script} has a syntax error");
    }
    let print = |api: &str, stream: &str| {
        Command::new("bash")
            .arg(repo().join("scripts/deploy.sh"))
            .args(["print-config", api, stream])
            .output()
            .unwrap()
    };
    let out = print(
        "https://abc123.execute-api.us-east-2.amazonaws.com/",
        "https://d111111abcdef8.cloudfront.net",
    );
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains(
        "window.CHATBOT_CONFIG = { apiBaseUrl: \"https://abc123.execute-api.us-east-2.amazonaws.com\", \
         streamUrl: \"https://d111111abcdef8.cloudfront.net\" };"
    ));
    // Empty = same origin: exactly the statement of the committed frontend/config.js.
    let local = String::from_utf8(print("", "").stdout).unwrap();
    let statement = local.lines().find(|l| l.starts_with("window.")).unwrap();
    let committed = std::fs::read_to_string(repo().join("frontend/config.js")).unwrap();
    assert!(
        committed.lines().any(|l| l == statement),
        "{statement} vs {committed}"
    );
    // Anything that is not a plain https URL never reaches the page's script.
    assert!(!print("https://x\";alert(1)//", "").status.success());
    assert!(!print("http://plain.example", "").status.success());
    // A deploy writes the same-origin config: relative /api/... for both the API and the
    // stream (the page always sends the OAC body hash on the stream).
    let script = std::fs::read_to_string(repo().join("scripts/deploy.sh")).unwrap();
    let writes: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("print_config ") && l.contains("config.js"))
        .collect();
    assert_eq!(writes, [r#"print_config "" "" >"$site_dir/config.js""#]);
    let api = std::fs::read_to_string(repo().join("frontend/api.js")).unwrap();
    assert!(
        api.contains("send(STREAM_ENDPOINT, body, signal, true)"),
        "the stream request always carries the body hash"
    );
}

// ---------------------------------------------------------------- the checker fails on mistakes

/// Problems the checker finds in a copy of the default template changed by `change`.
fn problems_after(change: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut doc = packaged().default.clone();
    change(&mut doc);
    checks::all(&template(&doc), &expect())
}

fn assert_reported(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem mentioning {needle:?}, got:\n  {}",
        problems.join("\n  ")
    );
}

fn edit_dashboard(doc: &mut Value, from: &str, to: &str) {
    let body = &mut doc["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"];
    let text = body.as_str().unwrap();
    assert!(text.contains(from), "{from} not in the dashboard");
    *body = Value::String(text.replacen(from, to, 1));
}

fn edit_dashboard_all(doc: &mut Value, from: &str, to: &str) {
    let body = &mut doc["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"];
    let text = body.as_str().unwrap();
    assert!(text.contains(from), "{from} not in the dashboard");
    *body = Value::String(text.replace(from, to));
}

fn bedrock_statement(doc: &mut Value) -> &mut Value {
    let statements = doc["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements
        .iter_mut()
        .find(|s| s["Action"].to_string().contains("bedrock:"))
        .unwrap()
}

#[test]
fn reports_a_dashboard_metric_that_is_not_in_the_catalog() {
    // A metric the budget removed, back on a plain line.
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "\"Latency\",\"Service\",\"chatbot-dev\",{\"stat\":\"SampleCount\",\"id\":\"requests\"",
            "\"Requests\",\"Service\",\"chatbot-dev\",{\"stat\":\"Sum\",\"id\":\"requests\"",
        );
    });
    assert_reported(&problems, "Requests is not a metric the service emits");
    // …and the real one is gone from the dashboard (no alarm reads OverheadLatency either).
    let problems = problems_after(|doc| {
        edit_dashboard_all(doc, "\"OverheadLatency\"", "\"ModelLatency\"");
    });
    assert_reported(&problems, "ModelLatency is not a metric the service emits");
    assert_reported(
        &problems,
        "catalog metric OverheadLatency is not on the dashboard nor read by any alarm",
    );
    assert_reported(&problems, "the dashboard must plot OverheadLatency p99");
    // In a Metrics Insights query and a SEARCH expression.
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "SELECT SUM(CostUSD)", "SELECT SUM(CostUnknown)");
        edit_dashboard(
            doc,
            "MetricName=\\\"Errors\\\"",
            "MetricName=\\\"ClientErrors\\\"",
        );
    });
    assert_reported(&problems, "CostUnknown is not a metric the service emits");
    assert_reported(&problems, "ClientErrors is not a metric the service emits");
}

#[test]
fn reports_a_metric_under_dimensions_it_is_never_published_with() {
    // The per-variant set the budget merged into [Service, Model, Variant], in a SEARCH: the
    // only read of Errors per model and variant, so that set is now read by nothing.
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "{ServerlessChatbot,Model,Service,Variant} MetricName=\\\"Errors\\\"",
            "{ServerlessChatbot,Service,Variant} MetricName=\\\"Errors\\\"",
        );
    });
    assert_reported(
        &problems,
        "Errors is never published with dimensions [\"Service\", \"Variant\"]",
    );
    assert_reported(
        &problems,
        "catalog metric Errors under [\"Service\", \"Model\", \"Variant\"] is read by no dashboard widget or alarm",
    );
    // In a Metrics Insights SCHEMA: InputTokens is published per model and variant only.
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "SUM(InputTokens) FROM SCHEMA(\\\"ServerlessChatbot\\\", Model, Service, Variant)",
            "SUM(InputTokens) FROM SCHEMA(\\\"ServerlessChatbot\\\", Model, Service)",
        );
    });
    assert_reported(
        &problems,
        "InputTokens is never published with dimensions [\"Model\", \"Service\"]",
    );
    // A plain line under a set the metric does not have.
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "\"TimeToFirstToken\",\"Service\",\"chatbot-dev\"",
            "\"TimeToFirstToken\",\"Service\",\"chatbot-dev\",\"Variant\",\"default\"",
        );
    });
    assert_reported(
        &problems,
        "TimeToFirstToken is never published with dimensions [\"Service\", \"Variant\"]",
    );
}

#[test]
fn reports_metrics_insights_queries_that_miscount() {
    // FROM a bare namespace sums the [Service] total and every per-model series together.
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "SUM(CostUSD) FROM SCHEMA(\\\"ServerlessChatbot\\\", Model, Service, Variant)",
            "SUM(CostUSD) FROM \\\"ServerlessChatbot\\\"",
        );
    });
    assert_reported(
        &problems,
        "FROM a bare namespace matches every dimension set",
    );
    // GROUP BY or WHERE on a key outside the schema; another stage's Service; no percentiles.
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "GROUP BY Variant", "GROUP BY ErrorCode");
        edit_dashboard(
            doc,
            "WHERE Service = 'chatbot-dev' GROUP BY Model",
            "WHERE Service = 'chatbot-prod' GROUP BY Model",
        );
        edit_dashboard(
            doc,
            "SELECT SUM(OutputTokens)",
            "SELECT PERCENTILE(OutputTokens)",
        );
    });
    assert_reported(
        &problems,
        "GROUP BY ErrorCode, which is not a dimension of its SCHEMA",
    );
    assert_reported(
        &problems,
        "InputTokens: Service must be exactly \"chatbot-dev\", got [\"chatbot-prod\"]",
    );
    assert_reported(
        &problems,
        "function must be one of AVG, COUNT, MAX, MIN, SUM",
    );
    // Metric math naming an id the widget does not define.
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "errors * 100 / requests", "errors * 100 / request");
    });
    assert_reported(&problems, "names undefined id request");
}

#[test]
fn metric_expressions_parse_into_metric_and_dimension_set() {
    use deploy::metrics::{from_dashboard, parse_expression, parse_insights};
    let (r, problems) = parse_insights(
        "select avg(\"Latency\") from SCHEMA(\"AWS/X\", Model, \"Service\", Variant) \
         where Service = 'svc' AND Model IN ('a', 'b') AND Variant != 'x' \
         group by Model order by avg() desc limit 10",
        "q",
    );
    assert_eq!(problems, Vec::<String>::new());
    let r = r.unwrap();
    assert_eq!(
        (r.namespace.as_str(), r.name.as_str(), r.stat.as_str()),
        ("AWS/X", "Latency", "AVG")
    );
    assert_eq!(r.dimension_set(), ["Model", "Service", "Variant"]);
    assert_eq!(
        r.dims,
        [
            ("Model".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ("Service".to_owned(), vec!["svc".to_owned()]),
            ("Variant".to_owned(), vec![]),
        ]
    );
    let (_, problems) = parse_insights(
        "SELECT SUM(Errors) FROM SCHEMA(N, Service) WHERE ErrorCode = 'x'",
        "q",
    );
    assert_reported(
        &problems,
        "WHERE on ErrorCode, which is not a dimension of its SCHEMA",
    );
    let (refs, problems) = parse_expression(
        "SEARCH('{N,Model,Service,Variant} MetricName=\"Latency\" Service=\"s\"', 'p90', 60)",
        "q",
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(refs[0].stat, "p90");
    assert_eq!(refs[0].dimension_set(), ["Model", "Service", "Variant"]);
    // Plain math reads no metric; two Metrics Insights queries in one widget are refused.
    assert_eq!(
        parse_expression("IF(a > 0, b / a, 0)", "q"),
        (vec![], vec![])
    );
    let q = "SELECT SUM(CostUSD) FROM SCHEMA(N, Model, Service, Variant) GROUP BY Model";
    let (_, problems) = from_dashboard(&json!({"widgets": [{"type": "metric", "properties": {
        "title": "t", "metrics": [[{"expression": q, "id": "a"}], [{"expression": q, "id": "b"}]]
    }}]}));
    assert_reported(&problems, "2 Metrics Insights queries");
}

#[test]
fn reports_log_widgets_that_miscount_or_lose_a_question() {
    // Counting a property both the EMF document and the summary line carry, without picking
    // one of them, counts each request twice.
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "filter message = \\\"request completed\\\" and level = \\\"ERROR\\\" | stats count(*) as failures by errorCode",
            "filter ispresent(errorCode) | stats count(*) as failures by errorCode",
        );
    });
    assert_reported(
        &problems,
        "counts [\"errorCode\"], which the summary line and the EMF document both carry",
    );
    // An EMF-only name on the summary line matches nothing.
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "effectiveStatus >= 400", "statusCode >= 400");
    });
    assert_reported(
        &problems,
        "reads the summary line (message = \"request completed\") but [\"statusCode\"] are not keys of it",
    );
    // A removed metric's question no log widget answers any more; a removed metric's name.
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "sum(costUnknown) as unpriced",
            "sum(costEstimated) as unpriced",
        );
        edit_dashboard(doc, "sum(coldStart)", "sum(ColdStart)");
    });
    assert_reported(
        &problems,
        "no Logs Insights widget reads costUnknown (the question the CostUnknown metric answered)",
    );
    assert_reported(&problems, "uses unknown field ColdStart");
    // The same rules for the runbook's queries.
    let t = template(&packaged().default);
    let mut x = expect();
    x.runbook_queries = vec![
        "filter message = \"request completed\" and ispresent(storeError)\n| stats count(*) by storeError"
            .into(),
    ];
    assert_reported(
        &checks::dashboard::runbook_queries(&t, &x),
        "[\"storeError\"] are not keys of it",
    );
}

#[test]
fn reports_token_counts_without_bedrocks_next_to_them() {
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "MetricName=\\\"InputTokenCount\\\"",
            "MetricName=\\\"Invocations\\\"",
        );
    });
    assert_reported(
        &problems,
        "no dashboard widget shows InputTokens next to AWS/Bedrock InputTokenCount",
    );
}

#[test]
fn reports_aws_metrics_with_wrong_dimension_names() {
    let problems = problems_after(|doc| {
        let m = &mut doc["Resources"]["LambdaErrorsAlarm"]["Properties"]["Metrics"][0]["MetricStat"]
            ["Metric"]["Dimensions"][0]["Name"];
        *m = json!("Function");
        edit_dashboard(doc, "\"ApiId\"", "\"ApiName\"");
        edit_dashboard(doc, "{AWS/Bedrock,ModelId}", "{AWS/Bedrock,Model}");
    });
    assert_reported(&problems, "AWS/Lambda dimension is FunctionName");
    assert_reported(&problems, "HTTP API metrics are by ApiId");
    assert_reported(&problems, "AWS/Bedrock dimension is ModelId");
}

#[test]
fn reports_an_alarm_without_ok_actions() {
    let problems = problems_after(|doc| {
        doc["Resources"]["ErrorRateAlarm"]["Properties"]
            .as_object_mut()
            .unwrap()
            .remove("OKActions");
    });
    assert_reported(&problems, "ErrorRateAlarm: OKActions lack the SNS topic");
}

#[test]
fn reports_a_runbook_link_to_a_missing_heading() {
    let problems = problems_after(|doc| {
        let d = &mut doc["Resources"]["DailyBudgetAlarm"]["Properties"]["AlarmDescription"];
        *d = json!(d.as_str().unwrap().replace("#daily-budget", "#daily-cost"));
    });
    assert_reported(
        &problems,
        "DailyBudgetAlarm: runbook link #daily-cost is no heading",
    );
    // The same when the heading goes from the runbook instead.
    let t = template(&packaged().default);
    let mut x = expect();
    x.runbook_anchors.remove("http-api-5xx");
    x.runbook_anchors.remove("state-store-errors");
    let problems = checks::alarms::check(&t, &x);
    assert_reported(&problems, "runbook link #http-api-5xx is no heading");
    assert_reported(
        &problems,
        "StateStoreErrorsAlarm: runbook link #state-store-errors is no heading",
    );
}

#[test]
fn reports_a_wildcard_iam_action() {
    let problems = problems_after(|doc| {
        bedrock_statement(doc)["Action"] = json!(["bedrock:*"]);
    });
    assert_reported(&problems, "wildcard action \"bedrock:*\"");
    let problems = problems_after(|doc| {
        let role = &mut doc["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"][0]["PolicyDocument"]
            ["Statement"];
        role.as_array_mut().unwrap().push(json!({
            "Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::some-bucket/*"
        }));
    });
    assert_reported(&problems, "wildcard action \"s3:Get*\"");
}

#[test]
fn reports_resource_star_on_bedrock() {
    let problems = problems_after(|doc| {
        bedrock_statement(doc)["Resource"] = json!("*");
    });
    assert_reported(&problems, "Resource \"*\" on Bedrock actions");
}

#[test]
fn reports_iam_for_a_model_that_is_not_configured() {
    let problems = problems_after(|doc| {
        let resources = bedrock_statement(doc)["Resource"].as_array_mut().unwrap();
        resources.push(json!({"Fn::Sub": "arn:${AWS::Partition}:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"}));
        resources.retain(|r| !r.to_string().contains("us-west-2"));
    });
    assert_reported(&problems, "which no configured model needs");
    assert_reported(
        &problems,
        "IAM lacks arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-micro-v1:0",
    );
}

#[test]
fn reports_a_buffered_function_url_and_a_public_bucket() {
    let problems = problems_after(|doc| {
        doc["Resources"]["StreamLambdaFunctionUrl"]["Properties"]["InvokeMode"] = json!("BUFFERED");
        doc["Resources"]["SiteBucket"]["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] =
            json!(false);
        doc["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
            ["ViewerProtocolPolicy"] = json!("allow-all");
    });
    assert_reported(&problems, "InvokeMode must be RESPONSE_STREAM");
    assert_reported(
        &problems,
        "Block Public Access RestrictPublicBuckets is not on",
    );
    assert_reported(&problems, "serves plain HTTP (allow-all)");
}

#[test]
fn reports_a_log_query_on_a_field_the_service_does_not_log() {
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "sort costUsd desc", "sort costUSD desc");
    });
    assert_reported(&problems, "uses unknown field costUSD");
}

#[test]
fn reports_an_average_latency_alarm_and_single_datapoint_alarms() {
    let problems = problems_after(|doc| {
        let a = doc["Resources"]["LatencyP99Alarm"]["Properties"]
            .as_object_mut()
            .unwrap();
        a.remove("ExtendedStatistic");
        a.insert("Statistic".into(), json!("Average"));
        a.insert("EvaluationPeriods".into(), json!(1));
    });
    assert_reported(
        &problems,
        "LatencyP99Alarm: a timing alarm must use a percentile",
    );
    assert_reported(&problems, "LatencyP99Alarm: needs M of N datapoints");
}

#[test]
fn reports_an_error_rate_alarm_on_a_removed_metric_or_an_averaged_latency() {
    let problems = problems_after(|doc| {
        let m = &mut doc["Resources"]["ErrorRateAlarm"]["Properties"]["Metrics"][0]["MetricStat"];
        m["Metric"]["MetricName"] = json!("Requests");
        m["Stat"] = json!("Sum");
    });
    assert_reported(
        &problems,
        "alarm ErrorRateAlarm: ServerlessChatbot/Requests is not a metric the service emits",
    );
    // The request count is Latency's sample count; its average is a timing, not a count.
    let problems = problems_after(|doc| {
        doc["Resources"]["ErrorRateAlarm"]["Properties"]["Metrics"][0]["MetricStat"]["Stat"] =
            json!("Average");
    });
    assert_reported(
        &problems,
        "ErrorRateAlarm: a timing alarm must use a percentile",
    );
}

fn dynamodb_statement(doc: &mut Value) -> &mut Value {
    let statements = doc["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements
        .iter_mut()
        .find(|s| s["Action"].to_string().contains("dynamodb:"))
        .unwrap()
}

fn origin_mut<'a>(doc: &'a mut Value, id: &str) -> &'a mut Value {
    doc["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]["Origins"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["Id"] == id)
        .unwrap()
}

fn behaviors_mut(doc: &mut Value) -> &mut Vec<Value> {
    doc["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]["CacheBehaviors"]
        .as_array_mut()
        .unwrap()
}

fn env_mut<'a>(doc: &'a mut Value, function: &str) -> &'a mut Value {
    &mut doc["Resources"][function]["Properties"]["Environment"]["Variables"]
}

#[test]
fn reports_dynamodb_wildcards_other_resources_and_missing_actions() {
    let problems = problems_after(|doc| {
        dynamodb_statement(doc)["Action"] = json!(["dynamodb:*"]);
    });
    assert_reported(&problems, "wildcard action \"dynamodb:*\"");
    assert_reported(
        &problems,
        "expected exactly chatbot_service::store::IAM_ACTIONS",
    );
    let problems = problems_after(|doc| {
        dynamodb_statement(doc)["Resource"] = json!("*");
    });
    assert_reported(
        &problems,
        "DynamoDB actions on [\"*\"], allowed only on the state table",
    );
    assert_reported(&problems, "Resource \"*\" is only for X-Ray writes");
    let problems = problems_after(|doc| {
        dynamodb_statement(doc)["Resource"] = json!([
            {"Fn::GetAtt": ["StateTable", "Arn"]},
            {"Fn::Sub": "${StateTable.Arn}/index/*"}
        ]);
    });
    assert_reported(
        &problems,
        "allowed only on the state table (${StateTable.Arn})",
    );
    let problems = problems_after(|doc| {
        let actions = dynamodb_statement(doc)["Action"].as_array_mut().unwrap();
        actions.retain(|a| a != "dynamodb:Query");
        actions.push(json!("dynamodb:Scan"));
    });
    assert_reported(
        &problems,
        "DynamoDB actions granted {\"dynamodb:BatchWriteItem\", \"dynamodb:DeleteItem\", \"dynamodb:PutItem\", \"dynamodb:Scan\", \"dynamodb:UpdateItem\"}",
    );
}

#[test]
fn reports_a_state_table_unlike_the_store_schema() {
    let problems = problems_after(|doc| {
        let tp = &mut doc["Resources"]["StateTable"]["Properties"];
        tp["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] = json!(false);
        tp["KeySchema"][0]["AttributeName"] = json!("id");
        tp["BillingMode"] = json!("PROVISIONED");
        tp["TimeToLiveSpecification"]["AttributeName"] = json!("ttl");
        tp.as_object_mut().unwrap().remove("SSESpecification");
    });
    assert_reported(&problems, "StateTable: point-in-time recovery is not on");
    assert_reported(&problems, "StateTable: KeySchema [(\"id\", \"HASH\")");
    assert_reported(
        &problems,
        "StateTable: BillingMode \"PROVISIONED\" must be PAY_PER_REQUEST",
    );
    assert_reported(&problems, "StateTable: TTL must be enabled on expiresAt");
    assert_reported(
        &problems,
        "StateTable: SSESpecification.SSEEnabled is not true",
    );
    // A function that does not name the table.
    let problems = problems_after(|doc| {
        env_mut(doc, "StreamLambdaFunction")
            .as_object_mut()
            .unwrap()
            .remove("CHATBOT_STATE_TABLE");
    });
    assert_reported(&problems, "both functions need CHATBOT_STATE_TABLE");
}

#[test]
fn reports_budgets_and_secrets_the_function_cannot_use() {
    let problems = problems_after(|doc| {
        for f in ["ApiLambdaFunction", "StreamLambdaFunction"] {
            let env = env_mut(doc, f);
            env["CHATBOT_DAILY_BUDGET_USD"] = json!("1e3");
            env["CHATBOT_BUDGET_FAIL_OPEN"] = json!("yes");
            // Only one origin secret accepted: no rotation without downtime.
            env["CHATBOT_ORIGIN_SECRETS"] =
                json!({"Fn::Sub": "{{resolve:secretsmanager:${OriginSecretBlue}}}"});
            env["CHATBOT_HASH_KEY"] = json!("a-literal-key");
        }
        let blue = &mut doc["Resources"]["OriginSecretBlue"]["Properties"];
        blue.as_object_mut().unwrap().remove("GenerateSecretString");
        blue["SecretString"] = json!("hunter2");
    });
    assert_reported(&problems, "CHATBOT_DAILY_BUDGET_USD must be a decimal > 0");
    assert_reported(&problems, "CHATBOT_BUDGET_FAIL_OPEN must be true or false");
    assert_reported(
        &problems,
        "CHATBOT_ORIGIN_SECRETS must accept two different secrets",
    );
    assert_reported(
        &problems,
        "CHATBOT_HASH_KEY must be one reference to a generated secret",
    );
    assert_reported(
        &problems,
        "OriginSecretBlue: a SecretString in the template",
    );
    assert_reported(&problems, "OriginSecretBlue: the value must be generated");
}

#[test]
fn reports_an_api_origin_without_the_origin_secret() {
    let problems = problems_after(|doc| {
        origin_mut(doc, "api")
            .as_object_mut()
            .unwrap()
            .remove("OriginCustomHeaders");
        // A literal value on the stream origin: not one the function accepts.
        origin_mut(doc, "stream")["OriginCustomHeaders"][0]["HeaderValue"] = json!("s3cret");
    });
    assert_reported(
        &problems,
        "origin api (/api/*) must send x-origin-verify with one of the secrets in CHATBOT_ORIGIN_SECRETS",
    );
    assert_reported(
        &problems,
        "origin stream (/api/chat/stream) must send x-origin-verify",
    );
}

#[test]
fn reports_an_origin_request_policy_that_forwards_host_or_drops_the_viewer_address() {
    let problems = problems_after(|doc| {
        let headers = &mut doc["Resources"]["ApiOriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]
            ["HeadersConfig"]["Headers"];
        let list = headers.as_array_mut().unwrap();
        list.retain(|h| h != "CloudFront-Viewer-Address");
        list.push(json!("Host"));
    });
    assert_reported(&problems, "/api/*: the origin request policy forwards Host");
    assert_reported(
        &problems,
        "/api/*: the origin request policy does not forward CloudFront-Viewer-Address",
    );
    let problems = problems_after(|doc| {
        doc["Resources"]["ApiOriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]
            ["HeaderBehavior"] = json!("allViewer");
    });
    assert_reported(&problems, "HeaderBehavior must be whitelist (never Host)");
    // A managed policy cannot be checked offline.
    let problems = problems_after(|doc| {
        behaviors_mut(doc)[1]["OriginRequestPolicyId"] =
            json!("b689b0a8-53d0-40ab-baf2-68738e2966ac");
    });
    assert_reported(
        &problems,
        "/api/* must use an origin request policy of this template",
    );
}

#[test]
fn reports_api_behaviours_out_of_order_or_missing() {
    let problems = problems_after(|doc| {
        behaviors_mut(doc).reverse();
    });
    assert_reported(&problems, "/api/chat/stream must come before /api/*");
    let problems = problems_after(|doc| {
        behaviors_mut(doc).retain(|b| b["PathPattern"] != "/api/*");
    });
    assert_reported(&problems, "no behavior for /api/*");
    let problems = problems_after(|doc| {
        behaviors_mut(doc)[0]
            .as_object_mut()
            .unwrap()
            .remove("FunctionAssociations");
    });
    assert_reported(
        &problems,
        "/api/chat/stream needs a viewer-request CloudFront Function",
    );
    let problems = problems_after(|doc| {
        origin_mut(doc, "api")["DomainName"] = json!("example.com");
    });
    assert_reported(
        &problems,
        "/api/* must go to the HTTP API's execute-api domain",
    );
}

#[test]
fn reports_cross_origin_leftovers() {
    let problems = problems_after(|doc| {
        let csp = &mut doc["Resources"]["SiteSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
            ["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"];
        *csp = json!(csp.as_str().unwrap().replace(
            "connect-src 'self'",
            "connect-src 'self' https://*.execute-api.us-east-2.amazonaws.com"
        ));
        doc["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"] =
            json!({"AllowOrigins": ["*"]});
        doc["Outputs"]["ApiUrl"]["Value"] = json!({"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]});
    });
    assert_reported(&problems, "CSP connect-src must be exactly 'self'");
    assert_reported(&problems, "HttpApi: the HTTP API has a CORS configuration");
    assert_reported(
        &problems,
        "output ApiUrl Some(\"${HttpApi.ApiEndpoint}\") must be the site URL",
    );
}

#[test]
fn reports_a_function_without_reserved_concurrency() {
    let problems = problems_after(|doc| {
        doc["Resources"]["ApiLambdaFunction"]["Properties"]
            .as_object_mut()
            .unwrap()
            .remove("ReservedConcurrentExecutions");
    });
    assert_reported(
        &problems,
        "ApiLambdaFunction: the buffered function needs a reserved-concurrency cap",
    );
}

#[test]
fn reports_a_web_acl_not_wired_from_the_parameter_or_of_the_wrong_scope() {
    let problems = problems_after(|doc| {
        doc["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]
            .as_object_mut()
            .unwrap()
            .remove("WebACLId");
    });
    assert_reported(
        &problems,
        "WebACLId must come from the wafWebAclArn parameter",
    );
    let problems = problems_after(|doc| {
        doc["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]["WebACLId"] =
            json!("arn:aws:wafv2:us-east-2:123456789012:regional/webacl/x/abc");
    });
    assert_reported(
        &problems,
        "WebACLId must come from the wafWebAclArn parameter",
    );
    // Wired, but the parameter names a regional web ACL (cfn-lint catches the pattern too).
    let mut doc = packaged().edge.clone();
    doc["Parameters"]["WafWebAclArn"]["Default"] =
        json!("arn:aws:wafv2:us-east-2:123456789012:regional/webacl/x/abc");
    assert_reported(
        &checks::endpoints::waf(&template(&doc)),
        "is not a CloudFront-scope WAFv2 web ACL",
    );
}

#[test]
fn reports_missing_spend_alarms_and_a_budget_line_that_disagrees() {
    let problems = problems_after(|doc| {
        doc["Resources"]
            .as_object_mut()
            .unwrap()
            .remove("StateStoreErrorsAlarm");
        // The budget alarm computed against another budget than the functions enforce.
        doc["Resources"]["DailyBudgetAlarm"]["Properties"]["Metrics"][1]["Expression"] =
            json!("cost * 100 / 50");
        doc["Resources"]["DailyBudgetAlarm"]["Properties"]["Threshold"] = json!(100);
    });
    assert_reported(&problems, "no alarm on StoreErrors");
    assert_reported(
        &problems,
        "DailyBudgetAlarm: must alarm on CostUSD as a percentage of CHATBOT_DAILY_BUDGET_USD",
    );
    assert_reported(
        &problems,
        "DailyBudgetAlarm: threshold 100 % must be below 100",
    );
    // …and the alarm widget no longer matches the stack.
    assert_reported(&problems, "the alarm widget shows");
    let problems = problems_after(|doc| {
        edit_dashboard(
            doc,
            "refuses past it)\",\"value\":5,",
            "refuses past it)\",\"value\":50,",
        );
    });
    assert_reported(&problems, "the dashboard needs a spend widget");
    // The catalog's spend metrics must be on the dashboard.
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "\"StoreErrors\",\"Service\"", "\"Errors\",\"Service\"");
    });
    assert_reported(
        &problems,
        "catalog metric StoreErrors is not on the dashboard",
    );
}

#[test]
fn github_anchors_follow_githubs_rules() {
    let md = "# Runbooks\n## HTTP API 5xx\n## What's `Latency`?\n```bash\n# not a heading\n```\n\
              ## Error rate\n## Error rate\n### [Link](https://x.example) text\n";
    let anchors = markdown::anchors(md);
    for a in [
        "runbooks",
        "http-api-5xx",
        "whats-latency",
        "error-rate",
        "error-rate-1",
        "link-text",
    ] {
        assert!(anchors.contains(a), "{a} not in {anchors:?}");
    }
    assert!(!anchors.contains("not-a-heading"));
    assert_eq!(
        markdown::code_blocks(
            "```logsinsights\nfields a\n```\n```\nb\n```\n",
            "logsinsights"
        ),
        ["fields a\n"]
    );
}

#[test]
fn reports_a_zip_lambda_cannot_run() {
    let entry = |name: &str, mode: u32| Entry {
        name: name.into(),
        unix_mode: Some(mode),
        size: 10,
    };
    assert_clean(artifact::check_lambda_zip(
        &[entry("bootstrap", 0o100_755)],
        10,
    ));
    assert_reported(
        &artifact::check_lambda_zip(&[entry("bootstrap", 0o100_644)], 10),
        "is not a regular file with mode 0755",
    );
    assert_reported(
        &artifact::check_lambda_zip(&[entry("target/bootstrap", 0o100_755)], 10),
        "not bootstrap at the root",
    );
}
