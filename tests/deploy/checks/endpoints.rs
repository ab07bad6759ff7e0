//! The endpoints and the site: the streaming Function URL (and who may invoke it), the HTTP
//! API's routes and throttling (no CORS: same origin), the private bucket behind CloudFront with
//! OAC, HTTPS and security headers, `/api/*` and the stream behind CloudFront with the origin
//! secret and the viewer's address, the optional WAF web ACL, and the stack outputs the deploy
//! script reads.

use std::collections::BTreeSet;

use serde_json::Value;

use super::iam::statements;
use super::spend::{origin_secrets, secret_refs};
use super::stage::function_in_mode;
use super::{API_PATH, CACHING_DISABLED, ORIGIN_SECRET_HEADER, STREAM_PATH, VIEWER_ADDRESS_HEADER};
use crate::deploy::template::{Template, list, props};

/// The stack's one distribution and its DistributionConfig.
fn distribution(t: &Template) -> Result<(&str, &Value), String> {
    let dists = t.of_type("AWS::CloudFront::Distribution");
    match dists.as_slice() {
        [(id, d)] => Ok((id, &props(d)["DistributionConfig"])),
        _ => Err(format!(
            "expected one CloudFront distribution, found {}",
            dists.len()
        )),
    }
}

fn behavior<'a>(config: &'a Value, path: &str) -> Option<&'a Value> {
    list(&config["CacheBehaviors"])
        .into_iter()
        .find(|b| b["PathPattern"] == path)
}

fn origin_of<'a>(config: &'a Value, behavior: &Value) -> Option<&'a Value> {
    list(&config["Origins"])
        .into_iter()
        .find(|o| o["Id"] == behavior["TargetOriginId"])
}

fn has_all(list_value: &Value, wanted: &[&str]) -> bool {
    let have: Vec<String> = list(list_value)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
        .collect();
    wanted.iter().all(|w| have.iter().any(|h| h == w))
}

pub fn function_url(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    let urls = t.of_type("AWS::Lambda::Url");
    let [(url_id, url)] = urls.as_slice() else {
        return vec![format!("expected one Function URL, found {}", urls.len())];
    };
    let up = props(url);
    if up["InvokeMode"] != "RESPONSE_STREAM" {
        p.push(format!(
            "{url_id}: InvokeMode must be RESPONSE_STREAM, got {}",
            up["InvokeMode"]
        ));
    }
    let target = up["TargetFunctionArn"]["Fn::GetAtt"][0].as_str();
    if target.is_none() || target != function_in_mode(t, "streaming") {
        p.push(format!(
            "{url_id}: must target the streaming function, targets {target:?}"
        ));
    }
    let cors = &up["Cors"];
    if !has_all(
        &cors["AllowHeaders"],
        &["content-type", "x-amz-content-sha256"],
    ) || !has_all(&cors["ExposeHeaders"], &["x-request-id"])
        || !has_all(&cors["AllowMethods"], &["post"])
    {
        p.push(format!(
            "{url_id}: CORS must allow POST with content-type and x-amz-content-sha256 and expose x-request-id"
        ));
    }
    if up["AuthType"] == "AWS_IAM" {
        // Behind CloudFront OAC: CloudFront, and only this distribution, may invoke it.
        for action in ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"] {
            let granted = t
                .of_type("AWS::Lambda::Permission")
                .iter()
                .any(|(_, perm)| {
                    let pp = props(perm);
                    pp["Action"] == action
                        && pp["Principal"] == "cloudfront.amazonaws.com"
                        && t.text(&pp["SourceArn"])
                            .is_some_and(|s| s.contains(":distribution/"))
                });
            if !granted {
                p.push(format!(
                    "{url_id}: no {action} permission for the CloudFront distribution"
                ));
            }
        }
    } else if up["AuthType"] != "NONE" {
        p.push(format!("{url_id}: unknown AuthType {}", up["AuthType"]));
    }
    p
}

pub fn http_api(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    for (id, api) in t.of_type("AWS::ApiGatewayV2::Api") {
        // The page calls /api/* on its own origin (CloudFront), so no browser needs CORS; one
        // would only invite cross-origin use of the direct endpoint.
        if props(api).get("CorsConfiguration").is_some() {
            p.push(format!(
                "{id}: the HTTP API has a CORS configuration; the page is same-origin through CloudFront"
            ));
        }
    }
    let routes: BTreeSet<String> = t
        .of_type("AWS::ApiGatewayV2::Route")
        .iter()
        .filter_map(|(_, r)| props(r)["RouteKey"].as_str().map(str::to_owned))
        .collect();
    // Every route of the service's router (crates/service/src/app.rs).
    for route in [
        "POST /api/chat",
        "POST /api/chat/stream",
        "GET /api/health",
        "GET /api/conversations/{id}",
        "DELETE /api/conversations/{id}",
    ] {
        if !routes.contains(route) {
            p.push(format!("the HTTP API lacks route {route}"));
        }
    }
    for (id, stage) in t.of_type("AWS::ApiGatewayV2::Stage") {
        let s = &props(stage)["DefaultRouteSettings"];
        if !s["ThrottlingBurstLimit"].is_number() || !s["ThrottlingRateLimit"].is_number() {
            p.push(format!("{id}: throttling burst and rate must be set"));
        }
    }
    p
}

pub fn site(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    for (id, b) in t.of_type("AWS::S3::Bucket") {
        let bpa = &props(b)["PublicAccessBlockConfiguration"];
        for key in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            if bpa[key] != true {
                p.push(format!("{id}: Block Public Access {key} is not on"));
            }
        }
        if props(b).get("WebsiteConfiguration").is_some() {
            p.push(format!(
                "{id}: a website bucket is public; serve through CloudFront"
            ));
        }
    }
    for (id, s) in statements(t) {
        let public = s["Principal"] == "*" || s["Principal"]["AWS"] == "*";
        if s["Effect"] == "Allow" && public {
            p.push(format!(
                "{id}: an Allow for Principal \"*\" makes the resource public"
            ));
        }
    }
    let dists = t.of_type("AWS::CloudFront::Distribution");
    let [(dist_id, dist)] = dists.as_slice() else {
        return vec![format!(
            "expected one CloudFront distribution, found {}",
            dists.len()
        )];
    };
    let config = &props(dist)["DistributionConfig"];
    let origins = list(&config["Origins"]);
    for o in &origins {
        // The bucket and the Function URL are private behind OAC; the HTTP API's origin cannot
        // use OAC and is checked for the origin secret instead (api_behind_cloudfront).
        let needs_oac = o.get("S3OriginConfig").is_some()
            || o["DomainName"].to_string().contains("FunctionUrl");
        let oac = o["OriginAccessControlId"]["Fn::GetAtt"][0].as_str();
        if needs_oac
            && oac.is_none_or(|id| t.type_of(id) != Some("AWS::CloudFront::OriginAccessControl"))
        {
            p.push(format!(
                "{dist_id}: origin {} has no Origin Access Control",
                o["Id"]
            ));
        }
        let oai = &o["S3OriginConfig"]["OriginAccessIdentity"];
        if !(oai.is_null() || *oai == "") {
            p.push(format!(
                "{dist_id}: origin {} uses a legacy OAI; use OAC",
                o["Id"]
            ));
        }
    }
    let mut behaviors = vec![&config["DefaultCacheBehavior"]];
    behaviors.extend(list(&config["CacheBehaviors"]));
    for b in &behaviors {
        let policy = b["ViewerProtocolPolicy"].as_str().unwrap_or("allow-all");
        if policy != "https-only" && policy != "redirect-to-https" {
            p.push(format!(
                "{dist_id}: behavior {} serves plain HTTP ({policy})",
                b["PathPattern"]
            ));
        }
        let headers = b["ResponseHeadersPolicyId"]["Ref"]
            .as_str()
            .and_then(|id| t.resource(id));
        let security =
            headers.map(|h| &props(h)["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]);
        let complete = security.is_some_and(|s| {
            [
                "StrictTransportSecurity",
                "ContentTypeOptions",
                "FrameOptions",
                "ContentSecurityPolicy",
                "ReferrerPolicy",
            ]
            .iter()
            .all(|k| s.get(*k).is_some())
        });
        if !complete {
            p.push(format!(
                "{dist_id}: behavior {} lacks the security-headers policy",
                b["PathPattern"]
            ));
        }
        // The page talks to its own origin only.
        let csp = security
            .and_then(|s| t.text(&s["ContentSecurityPolicy"]["ContentSecurityPolicy"]))
            .unwrap_or_default();
        let connect: Vec<&str> = csp
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix("connect-src "))
            .map(|d| d.split_whitespace().collect())
            .unwrap_or_default();
        if complete && connect != ["'self'"] {
            p.push(format!(
                "{dist_id}: behavior {}: CSP connect-src must be exactly 'self' (same origin), got {connect:?}",
                b["PathPattern"]
            ));
        }
    }
    let stream = behaviors.iter().find(|b| b["PathPattern"] == STREAM_PATH);
    match stream {
        None => p.push(format!("{dist_id}: no behavior for {STREAM_PATH}")),
        Some(b) => {
            let origin = origins.iter().find(|o| o["Id"] == b["TargetOriginId"]);
            let to_url =
                origin.is_some_and(|o| o["DomainName"].to_string().contains("FunctionUrl"));
            if !to_url {
                p.push(format!(
                    "{dist_id}: {STREAM_PATH} must go to the Function URL origin"
                ));
            }
            if !has_all(&b["AllowedMethods"], &["post"]) || b["CachePolicyId"] != CACHING_DISABLED {
                p.push(format!(
                    "{dist_id}: {STREAM_PATH} must allow POST and disable caching"
                ));
            }
        }
    }
    p
}

/// `/api/*` and the stream path through CloudFront: behaviour order, the HTTP API origin, the
/// origin secret header on both origins, the origin request policy (the viewer's address, never
/// Host), and the POST-only function on the stream path.
pub fn api_behind_cloudfront(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    let (dist_id, config) = match distribution(t) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let paths: Vec<&Value> = list(&config["CacheBehaviors"])
        .into_iter()
        .map(|b| &b["PathPattern"])
        .collect();
    let position = |path: &str| paths.iter().position(|p| **p == path);
    match (position(STREAM_PATH), position(API_PATH)) {
        (Some(stream), Some(api)) if stream > api => p.push(format!(
            "{dist_id}: {STREAM_PATH} must come before {API_PATH} (the first matching behavior wins)"
        )),
        (_, None) => p.push(format!("{dist_id}: no behavior for {API_PATH}")),
        _ => {}
    }
    let accepted = origin_secrets(t);
    for path in [STREAM_PATH, API_PATH] {
        let Some(b) = behavior(config, path) else {
            continue;
        };
        let Some(origin) = origin_of(config, b) else {
            p.push(format!(
                "{dist_id}: {path} targets no origin of the distribution"
            ));
            continue;
        };
        let origin_id = origin["Id"].as_str().unwrap_or_default();
        // The origin secret: CloudFront sends one of the values the function accepts.
        let sent = list(&origin["OriginCustomHeaders"])
            .into_iter()
            .find(|h| {
                h["HeaderName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(ORIGIN_SECRET_HEADER))
            })
            .and_then(|h| t.decide(&h["HeaderValue"]))
            .and_then(|v| secret_refs(t, &v));
        match sent.as_deref() {
            Some([id]) if accepted.contains(id) => {}
            _ => p.push(format!(
                "{dist_id}: origin {origin_id} ({path}) must send {ORIGIN_SECRET_HEADER} with one of \
                 the secrets in CHATBOT_ORIGIN_SECRETS {accepted:?}, sends {sent:?}"
            )),
        }
        if !has_all(&b["AllowedMethods"], &["post"]) || b["CachePolicyId"] != CACHING_DISABLED {
            p.push(format!(
                "{dist_id}: {path} must allow POST and disable caching"
            ));
        }
        p.extend(origin_request_policy(t, dist_id, path, b));
    }
    if let Some(b) = behavior(config, API_PATH)
        && let Some(origin) = origin_of(config, b)
    {
        let domain = t.text(&origin["DomainName"]).unwrap_or_default();
        if domain != "${HttpApi}.execute-api.${AWS::Region}.amazonaws.com" {
            p.push(format!(
                "{dist_id}: {API_PATH} must go to the HTTP API's execute-api domain, goes to {domain:?}"
            ));
        }
        if origin["CustomOriginConfig"]["OriginProtocolPolicy"] != "https-only" {
            p.push(format!(
                "{dist_id}: the {API_PATH} origin must be https-only"
            ));
        }
    }
    if let Some(b) = behavior(config, STREAM_PATH) {
        p.extend(post_only_function(t, dist_id, b));
    }
    p
}

/// The behaviour's origin request policy must be one of this template (a managed policy cannot be
/// checked offline), forward CloudFront-Viewer-Address and the headers the service reads, and
/// never Host (API Gateway and Lambda route on their own domain name).
fn origin_request_policy(t: &Template, dist_id: &str, path: &str, b: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let policy = b["OriginRequestPolicyId"]["Ref"]
        .as_str()
        .filter(|id| t.type_of(id) == Some("AWS::CloudFront::OriginRequestPolicy"))
        .and_then(|id| t.resource(id));
    let Some(policy) = policy else {
        p.push(format!(
            "{dist_id}: {path} must use an origin request policy of this template (it must forward \
             {VIEWER_ADDRESS_HEADER}; a managed policy cannot be checked here), got {}",
            b["OriginRequestPolicyId"]
        ));
        return p;
    };
    let headers = &props(policy)["OriginRequestPolicyConfig"]["HeadersConfig"];
    let behavior = headers["HeaderBehavior"].as_str().unwrap_or_default();
    let names: Vec<String> = list(&headers["Headers"])
        .iter()
        .filter_map(|h| h.as_str().map(str::to_ascii_lowercase))
        .collect();
    if behavior != "whitelist" {
        // allViewer and allViewerAndWhitelistCloudFront forward Host; allExcept forwards
        // whatever a client sends.
        p.push(format!(
            "{dist_id}: {path}: origin request policy HeaderBehavior must be whitelist (never Host), got {behavior:?}"
        ));
    }
    if names.iter().any(|h| h == "host") {
        p.push(format!(
            "{dist_id}: {path}: the origin request policy forwards Host; API Gateway and the Function URL need their own"
        ));
    }
    let mut wanted = vec![VIEWER_ADDRESS_HEADER, "Content-Type"];
    if path == STREAM_PATH {
        // CloudFront's OAC signs with the body hash the page sends.
        wanted.push("X-Amz-Content-Sha256");
    }
    for w in wanted {
        if !names.contains(&w.to_ascii_lowercase()) {
            p.push(format!(
                "{dist_id}: {path}: the origin request policy does not forward {w}"
            ));
        }
    }
    p
}

/// The stream path's viewer-request CloudFront Function (what it answers is tested by running
/// it: tests/deploy_template.rs).
fn post_only_function(t: &Template, dist_id: &str, b: &Value) -> Vec<String> {
    let function = list(&b["FunctionAssociations"])
        .into_iter()
        .find(|a| a["EventType"] == "viewer-request")
        .and_then(|a| a["FunctionARN"]["Fn::GetAtt"][0].as_str())
        .filter(|id| t.type_of(id) == Some("AWS::CloudFront::Function"))
        .and_then(|id| t.resource(id));
    let Some(f) = function else {
        return vec![format!(
            "{dist_id}: {STREAM_PATH} needs a viewer-request CloudFront Function that lets only POST through"
        )];
    };
    let fp = props(f);
    let mut p = Vec::new();
    if fp["FunctionConfig"]["Runtime"] != "cloudfront-js-2.0" || fp["AutoPublish"] != true {
        p.push(format!(
            "{dist_id}: the {STREAM_PATH} function must be cloudfront-js-2.0 and published (AutoPublish)"
        ));
    }
    p
}

/// The JavaScript of the stream path's viewer-request CloudFront Function.
pub fn stream_function_code(t: &Template) -> Option<String> {
    let (_, config) = distribution(t).ok()?;
    let b = behavior(config, STREAM_PATH)?;
    let id = list(&b["FunctionAssociations"])
        .into_iter()
        .find(|a| a["EventType"] == "viewer-request")?["FunctionARN"]["Fn::GetAtt"][0]
        .as_str()?;
    props(t.resource(id)?)["FunctionCode"]
        .as_str()
        .map(str::to_owned)
}

/// The optional WAF web ACL: wired from a template parameter (empty = none), and when set, a
/// CloudFront-scope WAFv2 web ACL (those live in us-east-1).
pub fn waf(t: &Template) -> Vec<String> {
    let mut p = Vec::new();
    let (dist_id, config) = match distribution(t) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let wiring = &config["WebACLId"];
    let from_parameter = |v: &Value| {
        v["Ref"]
            .as_str()
            .is_some_and(|id| t.doc["Parameters"].get(id).is_some())
    };
    let wired = match wiring.get("Fn::If").and_then(Value::as_array) {
        Some(branches) => branches.iter().skip(1).any(from_parameter),
        None => from_parameter(wiring),
    };
    if !wired {
        p.push(format!(
            "{dist_id}: WebACLId must come from the wafWebAclArn parameter (Fn::If on it being set), got {wiring}"
        ));
        return p;
    }
    if let Some(arn) = t.decide(wiring) {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let cloudfront_scope = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "wafv2"
            && parts[3] == "us-east-1"
            && parts[5].starts_with("global/webacl/");
        if !cloudfront_scope {
            p.push(format!(
                "{dist_id}: WebACLId {arn} is not a CloudFront-scope WAFv2 web ACL (arn:aws:wafv2:us-east-1:…:global/webacl/…)"
            ));
        }
    }
    p
}

pub fn outputs(t: &Template) -> Vec<String> {
    let mut p: Vec<String> = [
        "SiteUrl",
        "ApiUrl",
        "StreamUrl",
        "DashboardUrl",
        "SiteBucketName",
        "DistributionId",
    ]
    .iter()
    .filter(|k| t.doc["Outputs"].get(**k).is_none())
    .map(|k| format!("output {k} is missing (scripts/deploy.sh and docs/deploy.md read it)"))
    .collect();
    // Same origin: the API and the stream are served by the site's distribution.
    let value = |k: &str| t.text(&t.doc["Outputs"][k]["Value"]);
    for k in ["ApiUrl", "StreamUrl"] {
        if value(k) != value("SiteUrl") {
            p.push(format!(
                "output {k} {:?} must be the site URL {:?} (same origin)",
                value(k),
                value("SiteUrl")
            ));
        }
    }
    p
}
