//! AWS set-up for the report (the SDK's standard region/profile/credential chain plus the
//! `--region/--profile/--endpoint-url` overrides) and the one place SDK errors become messages a
//! person can act on.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::ReportError;
use super::args::AwsArgs;

/// IAM actions the metric report needs.
pub const METRICS_ACTIONS: &str = "cloudwatch:ListMetrics and cloudwatch:GetMetricData";
/// IAM actions `--top` needs on the log groups.
pub const LOGS_ACTIONS: &str = "logs:StartQuery, logs:GetQueryResults and logs:StopQuery";

/// Error codes AWS uses for "the caller is known but not allowed".
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
];
/// Error codes for "these credentials are not valid (any more)".
const BAD_CREDENTIALS: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

pub struct Clients {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

/// Loads the shared AWS configuration and checks, before any call, that a region and
/// credentials resolve — so those two common mistakes get their own message instead of a
/// dispatch failure.
pub async fn connect(args: &AwsArgs) -> Result<Clients, ReportError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(chatbot_service::aws::https_client());
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config: SdkConfig = loader.load().await;
    if config.region().is_none() {
        return Err(ReportError::NoRegion);
    }
    let provider = config
        .credentials_provider()
        .ok_or_else(|| ReportError::NoCredentials("no credential provider configured".into()))?;
    provider
        .provide_credentials()
        .await
        .map_err(|e| ReportError::NoCredentials(chain(&e)))?;
    Ok(Clients {
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
    })
}

/// Maps an SDK error from `action` (e.g. `GetMetricData`) to a report error; `needs` names the
/// IAM actions to grant when access is denied.
pub fn classify<E, R>(action: &'static str, needs: &'static str, err: SdkError<E, R>) -> ReportError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let detail = |e: &SdkError<E, R>| chain(e);
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or_default();
            let message = e.message().unwrap_or(code).to_owned();
            if ACCESS_DENIED.contains(&code) {
                ReportError::AccessDenied {
                    action,
                    message,
                    needs,
                }
            } else if BAD_CREDENTIALS.contains(&code) {
                ReportError::CredentialsRejected { action, message }
            } else if code == "ResourceNotFoundException" {
                ReportError::NotFound { action, message }
            } else {
                ReportError::Aws {
                    action,
                    message: detail(&err),
                }
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ReportError::Unreachable {
            action,
            message: detail(&err),
        },
        _ => ReportError::Aws {
            action,
            message: detail(&err),
        },
    }
}

/// An error and its sources, each once: `dispatch failure: io error: Connection refused`.
/// (The SDK's own `DisplayErrorContext` appends a Debug dump, too much for a terminal.)
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<GetMetricDataError, Response> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("User: arn:aws:iam::123456789012:user/ci is not authorized")
            .build();
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(GetMetricDataError::generic(meta), raw)
    }

    #[test]
    fn access_denied_names_the_missing_permissions() {
        let e = classify(
            "GetMetricData",
            METRICS_ACTIONS,
            service_error("AccessDenied", 403),
        );
        assert!(matches!(e, ReportError::AccessDenied { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("access denied"), "{text}");
        assert!(text.contains("cloudwatch:GetMetricData"), "{text}");
        assert!(text.contains("not authorized"), "{text}");
    }

    #[test]
    fn rejected_credentials_and_other_errors() {
        let e = classify(
            "GetMetricData",
            METRICS_ACTIONS,
            service_error("ExpiredToken", 403),
        );
        assert!(
            matches!(e, ReportError::CredentialsRejected { .. }),
            "{e:?}"
        );
        let e = classify(
            "GetMetricData",
            METRICS_ACTIONS,
            service_error("InvalidParameterValue", 400),
        );
        assert!(matches!(e, ReportError::Aws { .. }), "{e:?}");
    }
}
