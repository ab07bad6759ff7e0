//! The deploy template, offline: `serverless.yml` packaged by osls (pinned in package.json) with
//! a real artifact made by `scripts/zip-bootstrap` from the compiled binary, linted by cfn-lint,
//! and checked against the deploy issue's rules (tests/deploy/checks.rs): runtime and tracing,
//! least-privilege IAM for exactly the configured models, alarms with SNS actions and runbook
//! links that resolve, the streaming Function URL, the private bucket behind CloudFront OAC, and
//! one source of truth for metric names (`chatbot_service::telemetry::catalog`). The second half feeds
//! the checker broken copies of the template and shows each mistake is reported.
//!
//! Needs `scripts/setup-test-deps` (osls, cfn-lint); no AWS account.

mod deploy;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use deploy::artifact::{self, Entry};
use deploy::checks::{self, Expect};
use deploy::markdown;
use deploy::template::Template;
use deploy::tools::{self, ScratchDir, repo};

const REGION: &str = "us-east-2";
const MICRO: &str = "us.amazon.nova-micro-v1:0";
const LITE: &str = "us.amazon.nova-lite-v1:0";
const HAIKU: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";

struct Packaged {
    zip_entries: Vec<Entry>,
    binary_size: u64,
    /// Stage `dev` with the defaults: one model.
    default: Value,
    /// Stage `variants`: two weighted variants and a fallback model, as deploy parameters.
    variants: Value,
}

/// Zips the compiled binary with scripts/zip-bootstrap, then packages both stages in parallel
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
        let (default, variants) = std::thread::scope(|s| {
            let a = s.spawn(|| tools::package("dev", REGION, &zip, &[]));
            let b = s.spawn(|| {
                tools::package(
                    "variants",
                    REGION,
                    &zip,
                    &[&variants_param, &fallback_param],
                )
            });
            let join = |h: std::thread::ScopedJoinHandle<'_, Value>| {
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            };
            (join(a), join(b))
        });
        Packaged {
            zip_entries,
            binary_size: std::fs::metadata(binary).unwrap().len(),
            default,
            variants,
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
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "\"ColdStart\"", "\"ColdStarts\"");
    });
    assert_reported(&problems, "ColdStarts is not a metric the service emits");
    // …and the real one is now missing from the dashboard.
    assert_reported(
        &problems,
        "catalog metric ColdStart is not on the dashboard",
    );
}

#[test]
fn reports_a_metric_under_dimensions_it_is_never_published_with() {
    let problems = problems_after(|doc| {
        edit_dashboard(doc, "Service,ErrorCode}", "Service,Route}");
    });
    assert_reported(
        &problems,
        "is never published with dimensions [\"Route\", \"Service\"]",
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
        let d = &mut doc["Resources"]["DailyCostAlarm"]["Properties"]["AlarmDescription"];
        *d = json!(d.as_str().unwrap().replace("#daily-cost", "#daily-costs"));
    });
    assert_reported(
        &problems,
        "DailyCostAlarm: runbook link #daily-costs is no heading",
    );
    // The same when the heading goes from the runbook instead.
    let t = template(&packaged().default);
    let mut x = expect();
    x.runbook_anchors.remove("http-api-5xx");
    assert_reported(
        &checks::alarms::check(&t, &x),
        "runbook link #http-api-5xx is no heading",
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
