//! `sms-sink [ADDRESS]`: serves the sink on ADDRESS (default `127.0.0.1:8026`, or
//! `CITAFLOW_SMS_SINK_LISTEN`) until SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let address: SocketAddr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CITAFLOW_SMS_SINK_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8026".into())
        .parse()
        .context("the listen address must be host:port, e.g. 127.0.0.1:8026")?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    println!(
        "sms-sink: listening on http://{address} (Twilio API at /2010-04-01/Accounts/{{sid}}/Messages.json, messages at /api/messages and /)"
    );
    axum::serve(listener, sms_sink::router(sms_sink::Sink::default()))
        .with_graceful_shutdown(stopped())
        .await
        .context("serving")
}

async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
