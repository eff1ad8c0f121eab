//! The functions' log subscriber: Lambda's log level and format for our
//! own crates, and never more than warnings from anyone else's.
//!
//! At DEBUG and TRACE, the Lambda runtime logs every raw event it receives
//! (a webhook's path token, its signature header and its body), and the
//! SDK's HTTP and signing stack logs requests and credentials' session
//! tokens. `LogLevel` is a template parameter an operator may set to TRACE
//! to debug, so the level it sets applies to switchboard's crates only —
//! which log no credential and no body at any level — and every other crate
//! stays at WARN whatever it says.

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_runtime::tracing::subscriber::fmt;
use std::str::FromStr;

/// Our crates, which follow the configured level.
const OWN_CRATES: [&str; 4] = [
    "switchboard_aws",
    "switchboard_pipeline",
    "switchboard_providers",
    "switchboard_types",
];

/// The filter for a configured level (`AWS_LAMBDA_LOG_LEVEL`, which
/// `LoggingConfig.ApplicationLogLevel` sets, else `RUST_LOG`): that level
/// for our crates, WARN (or less, if the level is lower) for every other.
pub fn filter(configured: Option<&str>) -> EnvFilter {
    let level = configured
        .and_then(|l| LevelFilter::from_str(l.trim()).ok())
        .unwrap_or(LevelFilter::INFO);
    let others = level.min(LevelFilter::WARN);
    let mut directives = others.to_string().to_lowercase();
    for name in OWN_CRATES {
        directives.push_str(&format!(",{name}={}", level.to_string().to_lowercase()));
    }
    EnvFilter::builder().parse_lossy(directives)
}

/// Installs the subscriber: JSON lines when Lambda's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT`), text otherwise; no timestamps (CloudWatch
/// stamps each line).
pub fn init() {
    let configured = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let builder = fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(configured.as_deref()));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn other_crates_never_go_past_warn() {
        let trace = filter(Some("TRACE")).to_string();
        for name in super::OWN_CRATES {
            assert!(trace.contains(&format!("{name}=trace")), "{trace}");
        }
        assert!(trace.ends_with(",warn"), "{trace}");
        assert!(filter(Some("error")).to_string().ends_with(",error"));
        assert!(filter(None).to_string().contains("switchboard_aws=info"));
        // RUST_LOG-style directives are not honoured for other crates.
        assert!(filter(Some("hyper=trace")).to_string().ends_with(",warn"));
    }
}
