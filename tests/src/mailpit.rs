//! Reads what the notifier delivered to Mailpit, through Mailpit's JSON API.

use std::time::Duration;

use serde_json::Value;

use crate::Stack;

/// One message as Mailpit stores it (summary plus full view).
#[derive(Debug, Clone)]
pub struct Mail {
    pub id: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Value>,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Mailpit's summaries of the messages sent to `address` (at most `limit`), newest first.
async fn search_to(http: &reqwest::Client, address: &str, limit: usize) -> Vec<Value> {
    let base = &Stack::get().mailpit;
    let search: Value = http
        .get(format!("{base}/api/v1/search"))
        .query(&[
            ("query", format!("to:\"{address}\"")),
            ("limit", limit.to_string()),
        ])
        .send()
        .await
        .expect("Mailpit search")
        .json()
        .await
        .expect("Mailpit JSON");
    search["messages"].as_array().cloned().unwrap_or_default()
}

/// The `Message-ID`s of the messages sent to `address`, newest first.
pub async fn message_ids_to(address: &str) -> Vec<String> {
    search_to(&client(), address, 1000)
        .await
        .iter()
        .filter_map(|m| m["MessageID"].as_str().map(str::to_owned))
        .collect()
}

/// Messages sent to `address`, newest first.
pub async fn messages_to(address: &str) -> Vec<Mail> {
    let base = &Stack::get().mailpit;
    let http = client();
    let mut out = Vec::new();
    for summary in search_to(&http, address, 200).await {
        let id = summary["ID"].as_str().unwrap_or_default().to_string();
        let full: Value = http
            .get(format!("{base}/api/v1/message/{id}"))
            .send()
            .await
            .expect("Mailpit message")
            .json()
            .await
            .expect("Mailpit JSON");
        out.push(Mail {
            id,
            subject: full["Subject"].as_str().unwrap_or_default().to_string(),
            text: full["Text"].as_str().unwrap_or_default().to_string(),
            html: full["HTML"].as_str().unwrap_or_default().to_string(),
            attachments: full["Attachments"].as_array().cloned().unwrap_or_default(),
        });
    }
    out
}

/// Waits until at least `count` messages reached `address`, then a little longer so that
/// duplicates, if any, would show up too.
pub async fn wait_for_messages(address: &str, count: usize, within: Duration) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let messages = messages_to(address).await;
        if messages.len() >= count {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            return messages_to(address).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {count} message(s) to {address} within {within:?}, got {}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The content of an attachment part.
pub async fn part(message_id: &str, part_id: &str) -> String {
    let base = &Stack::get().mailpit;
    client()
        .get(format!("{base}/api/v1/message/{message_id}/part/{part_id}"))
        .send()
        .await
        .expect("Mailpit part")
        .text()
        .await
        .expect("part text")
}
