//! Point the unmodified AWS SDK at the offline model: one Converse call and one ConverseStream
//! call, no AWS account. `cargo run -p bedrock-offline --example converse`.

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseStreamOutput, Message,
};
use aws_sdk_bedrockruntime::{Client, Config};
use bedrock_offline::OfflineConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Zero latency and no faults; port 0 picks a free port.
    let server = bedrock_offline::spawn(OfflineConfig::default(), "127.0.0.1:0".parse()?).await?;

    // Any region and static credentials: the offline model ignores the signature. Plain HTTP on
    // loopback, so any HTTP client will do (the SDK's default one needs its
    // `default-https-client` feature).
    let config = Config::builder()
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "example"))
        .endpoint_url(server.endpoint_url())
        .build();
    let client = Client::from_conf(config);

    let question = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text("What are you?".into()))
        .build()?;

    let reply = client
        .converse()
        .model_id("us.amazon.nova-micro-v1:0")
        .messages(question.clone())
        .send()
        .await?;
    let text = reply.output().and_then(|o| o.as_message().ok());
    let usage = reply.usage().expect("usage is always reported");
    println!(
        "converse: {:?} ({} in / {} out tokens, stop reason {})",
        text.and_then(|m| m.content().first())
            .and_then(|b| b.as_text().ok()),
        usage.input_tokens(),
        usage.output_tokens(),
        reply.stop_reason()
    );

    let mut stream = client
        .converse_stream()
        .model_id("us.amazon.nova-micro-v1:0")
        .messages(question)
        .send()
        .await?
        .stream;
    let mut deltas = 0;
    while let Some(event) = stream.recv().await? {
        match event {
            ConverseStreamOutput::ContentBlockDelta(_) => deltas += 1,
            ConverseStreamOutput::Metadata(m) => {
                let u = m.usage().expect("usage");
                println!(
                    "converse-stream: {deltas} deltas, {} in / {} out tokens",
                    u.input_tokens(),
                    u.output_tokens()
                );
            }
            _ => {}
        }
    }

    // Fault injection is per request: `#fault=throttle` in the last user message.
    let throttled = client
        .converse()
        .model_id("us.amazon.nova-micro-v1:0")
        .messages(
            Message::builder()
                .role(ConversationRole::User)
                .content(ContentBlock::Text("hello #fault=throttle".into()))
                .build()?,
        )
        .send()
        .await;
    println!(
        "with #fault=throttle: {}",
        throttled
            .err()
            .and_then(|e| e.into_service_error().meta().code().map(str::to_owned))
            .unwrap_or_default()
    );
    server.shutdown().await;
    Ok(())
}
