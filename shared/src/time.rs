//! Timestamps as Mistral writes them: UTC, `2026-11-22 16:35:54`.

use chrono::{DateTime, Utc};

/// Format milliseconds since the epoch the way Mistral's API does.
pub fn format(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_mistral() {
        assert_eq!(super::format(1_795_365_354_000), "2026-11-22 16:35:54");
    }
}
