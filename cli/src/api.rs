//! The REST side of `citaflow`: where the API is, how to authenticate, and turning transport
//! failures and the API's error shape (`{"error": {"code", "message", "details"}}`) into
//! messages a person can act on. `import` and `load` are clients like any other: they use only
//! the public API.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

/// Where the API is and how to authenticate, shared by the API commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Base URL of the Citaflow API.
    #[arg(
        long,
        env = "CITAFLOW_API_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub api_url: String,

    /// Bearer token to use instead of logging in.
    #[arg(
        long,
        env = "CITAFLOW_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub token: Option<String>,

    /// Admin username to log in with (the password is read from the variable named by
    /// --password-env, never from the command line).
    #[arg(long, env = "CITAFLOW_USERNAME", value_name = "NAME")]
    pub username: Option<String>,

    /// Name of the environment variable that holds the password.
    #[arg(long, default_value = "CITAFLOW_PASSWORD", value_name = "VAR")]
    pub password_env: String,

    /// Seconds before one HTTP request is given up.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub timeout_secs: u64,
}

/// An answer of the API: status and JSON body (`Value::Null` when the body is empty or not
/// JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// A one-line explanation of an error answer: its message and, for invalid fields, which
    /// fields and why.
    pub fn reason(&self) -> String {
        error_reason(self.status, &self.body)
    }
}

/// One line saying why the API refused something, from its error shape.
pub fn error_reason(status: StatusCode, body: &Value) -> String {
    let error = &body["error"];
    let Some(message) = error["message"].as_str() else {
        return format!("the API answered {status}");
    };
    let details = &error["details"];
    match error["code"].as_str() {
        Some("validation_failed") => {
            let fields: Vec<String> = details
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| {
                    Some(format!(
                        "{}: {}",
                        f["field"].as_str()?,
                        f["message"].as_str()?
                    ))
                })
                .collect();
            if fields.is_empty() {
                message.to_owned()
            } else {
                fields.join("; ")
            }
        }
        Some("booking_rejected") => match details["reason_code"].as_str() {
            Some(code) if !code.is_empty() => format!("{message} ({code})"),
            _ => message.to_owned(),
        },
        _ => match details["reason"].as_str() {
            Some(reason) => format!("{message} ({reason})"),
            None => message.to_owned(),
        },
    }
}

/// A signed-in client of the API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: String,
    timeout: Duration,
}

/// The API's base URL, checked.
pub fn base_url(raw: &str) -> anyhow::Result<Url> {
    let mut url =
        Url::parse(raw.trim()).map_err(|e| anyhow!("--api-url {raw:?} is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("--api-url {raw:?} must be an http:// or https:// URL with a host");
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl Api {
    /// Builds the HTTP client and authenticates: with `--token` as given (checked with one
    /// request), else by logging in with the username and the password from the environment.
    /// `pool` is the number of connections kept open to the API.
    pub async fn connect(args: &ApiArgs, pool: usize) -> anyhow::Result<Api> {
        let base = base_url(&args.api_url)?;
        let timeout = Duration::from_secs(args.timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(pool.max(1))
            .user_agent(concat!("citaflow-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        let mut api = Api {
            http,
            base,
            token: String::new(),
            timeout,
        };
        match (&args.token, &args.username) {
            (Some(token), _) if !token.trim().is_empty() => {
                api.token = token.trim().to_owned();
                api.check_token().await?;
            }
            (_, Some(username)) => {
                let password = std::env::var(&args.password_env).map_err(|_| {
                    anyhow!(
                        "no password: set the environment variable {} (or name another with --password-env); \
                         it is never taken from the command line",
                        args.password_env
                    )
                })?;
                api.token = api.login(username, &password).await?;
            }
            _ => bail!(
                "no credentials: pass --token (or CITAFLOW_TOKEN), or --username (or CITAFLOW_USERNAME) \
                 with the password in CITAFLOW_PASSWORD (or the variable named by --password-env)"
            ),
        }
        Ok(api)
    }

    /// The absolute URL of `path` (e.g. `centers/bulk`).
    pub fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("API paths are valid relative URLs")
    }

    async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let reply = self
            .send_unauthenticated(
                Method::POST,
                "auth/login",
                Some(&json!({ "username": username, "password": password })),
            )
            .await?;
        match reply.status {
            StatusCode::OK => reply.body["access_token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("login failed: the API's answer has no access_token")),
            StatusCode::UNAUTHORIZED => bail!(
                "login failed: wrong username or password for {username:?} (or the user is inactive)"
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                bail!("login failed: too many failed attempts for {username:?}; try again later")
            }
            status => bail!("login failed: {} ({status})", reply.reason()),
        }
    }

    /// Refuses a token the API does not accept, with a clear message, before any work starts.
    async fn check_token(&self) -> anyhow::Result<()> {
        let reply = self.send(Method::GET, "centers?per_page=1", None).await?;
        match reply.status {
            StatusCode::OK => Ok(()),
            StatusCode::UNAUTHORIZED => bail!(
                "login failed: the API refused the token (invalid, expired or its user is inactive)"
            ),
            status => bail!("checking the token: {} ({status})", reply.reason()),
        }
    }

    /// Whether the signed-in user may administer the directory (admins only).
    pub async fn require_admin(&self) -> anyhow::Result<()> {
        let reply = self.send(Method::GET, "users?per_page=1", None).await?;
        match reply.status {
            StatusCode::OK => Ok(()),
            StatusCode::FORBIDDEN => bail!("this needs an admin: the signed-in user is not one"),
            StatusCode::UNAUTHORIZED => bail!("login failed: the API refused the token"),
            status => bail!("checking permissions: {} ({status})", reply.reason()),
        }
    }

    async fn send_unauthenticated(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.finish(request).await
    }

    /// Sends an authenticated request and reads its JSON answer. Transport failures become
    /// errors that say what to check; HTTP error statuses are answers, not errors.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        self.send_with(method, path, body, None).await
    }

    /// Like [`Api::send`], with `Prefer: wait=N`.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        wait_secs: Option<u64>,
    ) -> anyhow::Result<Reply> {
        let mut request = self.request(method, path, body);
        if let Some(wait) = wait_secs {
            request = request.header("prefer", format!("wait={wait}"));
        }
        self.finish(request).await
    }

    /// An authenticated request with `body` as JSON, not sent yet (for callers that send and
    /// time requests themselves).
    pub fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Reply> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// Creates every item through `POST /{resource}/bulk`, answering their ids in order; any
    /// refused item is an error naming why (for tools that prepare their own data).
    pub async fn create_all(
        &self,
        resource: &str,
        items: Vec<Value>,
    ) -> anyhow::Result<Vec<String>> {
        let reply = self
            .send(
                Method::POST,
                &format!("{resource}/bulk"),
                Some(&Value::Array(items)),
            )
            .await?;
        if reply.status != StatusCode::OK {
            bail!(
                "preparing {resource}: {} ({})",
                reply.reason(),
                reply.status
            );
        }
        reply.body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|result| match result["id"].as_str() {
                Some(id) => Ok(id.to_owned()),
                None => Err(anyhow!(
                    "preparing {resource}: {}",
                    result["error"]["message"]
                        .as_str()
                        .unwrap_or("an item failed")
                )),
            })
            .collect()
    }

    /// Fetches every page of a list endpoint (`path` with its filters).
    pub async fn list_all(&self, path: &str, limit: usize) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let separator = if path.contains('?') { '&' } else { '?' };
        for page in 1.. {
            let reply = self
                .send(
                    Method::GET,
                    &format!("{path}{separator}page={page}&per_page=200"),
                    None,
                )
                .await?;
            if reply.status != StatusCode::OK {
                bail!("GET /{path}: {} ({})", reply.reason(), reply.status);
            }
            let batch = reply.body["items"].as_array().cloned().unwrap_or_default();
            let total = reply.body["total"].as_u64().unwrap_or(0) as usize;
            let done = batch.is_empty();
            items.extend(batch);
            if done || items.len() >= total || items.len() >= limit {
                break;
            }
        }
        Ok(items)
    }

    /// Every record of a list endpoint that may answer either a plain JSON array or a page
    /// (`{"items", "total"}`); a page is followed with [`Api::list_all`] when there are more.
    pub async fn list_every(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let reply = self.send(Method::GET, path, None).await?;
        if reply.status != StatusCode::OK {
            bail!("GET /{path}: {} ({})", reply.reason(), reply.status);
        }
        match reply.body {
            Value::Array(items) => Ok(items),
            page => {
                let items = page["items"].as_array().cloned().unwrap_or_default();
                let total = page["total"].as_u64().unwrap_or(0) as usize;
                if items.len() >= total {
                    Ok(items)
                } else {
                    self.list_all(path, usize::MAX).await
                }
            }
        }
    }

    /// A transport failure explained: unreachable, too slow, or something else.
    pub fn transport_error(&self, err: &reqwest::Error) -> anyhow::Error {
        describe_transport(err, &self.base, self.timeout)
    }
}

/// Percent-encodes a query parameter value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Explains a transport failure against the API at `base`.
pub fn describe_transport(err: &reqwest::Error, base: &Url, timeout: Duration) -> anyhow::Error {
    let root = root_cause(err);
    if err.is_connect() {
        anyhow!(
            "cannot reach the API at {base}: {root} (is it running? `./dev status` shows the local stack)"
        )
    } else if err.is_timeout() {
        anyhow!(
            "the API at {base} did not answer within {}s",
            timeout.as_secs()
        )
    } else {
        anyhow!("request to the API at {base} failed: {root}")
    }
}

/// The innermost cause of an error (e.g. "Connection refused (os error 111)").
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Whether a transport error is worth retrying (the request may not have been processed).
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_list_their_fields() {
        let body = json!({"error": {"code": "validation_failed", "message": "the request has invalid fields",
            "details": [{"field": "phone", "message": "must be E.164"}, {"field": "language", "message": "must be `es` or `en`"}]}});
        assert_eq!(
            error_reason(StatusCode::UNPROCESSABLE_ENTITY, &body),
            "phone: must be E.164; language: must be `es` or `en`"
        );
    }

    #[test]
    fn other_errors_keep_their_message_and_reason() {
        let body = json!({"error": {"code": "invalid_body", "message": "The item does not have the expected fields or types.",
            "details": {"reason": "unknown variant `doctor`"}}});
        assert_eq!(
            error_reason(StatusCode::BAD_REQUEST, &body),
            "The item does not have the expected fields or types. (unknown variant `doctor`)"
        );
        assert_eq!(
            error_reason(StatusCode::BAD_GATEWAY, &Value::Null),
            "the API answered 502 Bad Gateway"
        );
    }

    #[test]
    fn base_urls_are_checked_and_end_with_a_slash() {
        assert_eq!(
            base_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            base_url("http://h/api")
                .unwrap()
                .join("centers")
                .unwrap()
                .as_str(),
            "http://h/api/centers"
        );
        assert!(base_url("127.0.0.1:8080").is_err());
        assert!(base_url("ftp://h").is_err());
        assert!(base_url("not a url").is_err());
    }
}
