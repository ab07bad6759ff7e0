//! The endpoints and the site: the streaming Function URL (and who may invoke it), the HTTP
//! API's CORS, routes and throttling, the private bucket behind CloudFront with OAC, HTTPS and
//! security headers, and the stack outputs the deploy script reads.

use std::collections::BTreeSet;

use serde_json::Value;

use super::iam::statements;
use super::stage::function_in_mode;
use super::{CACHING_DISABLED, STREAM_PATH};
use crate::deploy::template::{Template, list, props};

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
        let cors = &props(api)["CorsConfiguration"];
        if !has_all(
            &cors["AllowHeaders"],
            &["content-type", "x-amz-content-sha256"],
        ) || !has_all(&cors["ExposeHeaders"], &["x-request-id"])
        {
            p.push(format!("{id}: CORS must allow content-type and x-amz-content-sha256 and expose x-request-id"));
        }
        let origins = list(&cors["AllowOrigins"]);
        if origins.is_empty() || origins.iter().any(|o| o.as_str() == Some("*")) {
            p.push(format!("{id}: CORS must name the site origin, not *"));
        }
    }
    let routes: BTreeSet<String> = t
        .of_type("AWS::ApiGatewayV2::Route")
        .iter()
        .filter_map(|(_, r)| props(r)["RouteKey"].as_str().map(str::to_owned))
        .collect();
    for route in ["POST /api/chat", "GET /api/health"] {
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
        let oac = o["OriginAccessControlId"]["Fn::GetAtt"][0].as_str();
        if oac.is_none_or(|id| t.type_of(id) != Some("AWS::CloudFront::OriginAccessControl")) {
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

pub fn outputs(t: &Template) -> Vec<String> {
    [
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
    .collect()
}
