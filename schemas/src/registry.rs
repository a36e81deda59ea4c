//! A small client for the Confluent schema registry REST API (served by Confluent's registry
//! and by Apicurio at `/apis/ccompat/v7`). Registered ids and fetched schemas are cached for
//! the life of the process: an id always names the same schema.
//!
//! Before registering under a subject, the client has the registry enforce [`COMPATIBILITY`]
//! on it, so a schema change that would break the readers of records already written is
//! refused by the registry, not discovered by a consumer.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use apache_avro::Schema;
use serde::Deserialize;
use tokio::sync::RwLock;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The compatibility our subjects are held to: a new version must read every record written
/// with the one before it (fields are only added with a default, or removed). Data teams that
/// read with an older schema keep working too, as long as fields are added with defaults.
pub const COMPATIBILITY: &str = "BACKWARD";

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or answered 5xx: worth retrying later.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    /// The registry has no schema with this id: retrying will not help.
    #[error("schema id {0} is unknown to the registry")]
    UnknownId(u32),
    /// The registry refused the request (4xx) or answered something we cannot use.
    #[error("schema registry refused the request: {0}")]
    Refused(String),
}

impl RegistryError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Unavailable(_))
    }
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
}

#[derive(Deserialize)]
struct ConfigResponse {
    compatibility: String,
}

/// Client of a Confluent-compatible schema registry.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    base_url: String,
    by_id: Arc<RwLock<HashMap<u32, Arc<Schema>>>>,
    /// Subjects whose compatibility this client (and its clones) has already set.
    compatibility_set: Arc<RwLock<HashSet<String>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl RegistryClient {
    /// `base_url` is the root of the Confluent API, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| RegistryError::Refused(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            by_id: Arc::default(),
            compatibility_set: Arc::default(),
        })
    }

    /// Registers a schema under `subject` (idempotent in the registry) and returns its id,
    /// after making the registry enforce [`COMPATIBILITY`] on the subject
    /// ([`RegistryClient::enforce_compatibility`]): a schema that is not compatible with the
    /// subject's latest version is refused ([`RegistryError::Refused`], HTTP 409).
    /// `text` is registered as written (docs, defaults and logical types included: the
    /// parsing canonical form would drop them); `schema` is its parsed form.
    pub async fn register(
        &self,
        subject: &str,
        text: &str,
        schema: &Schema,
    ) -> Result<u32, RegistryError> {
        self.enforce_compatibility(subject).await?;
        let url = format!("{}/subjects/{}/versions", self.base_url, subject);
        let body = serde_json::json!({ "schema": text, "schemaType": "AVRO" });
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .json(&body)
            .send()
            .await
            .map_err(|e| RegistryError::Unavailable(format!("POST {url}: {e}")))?;
        let id: IdResponse = Self::read_json(response, &url).await?;
        self.by_id
            .write()
            .await
            .insert(id.id, Arc::new(schema.clone()));
        Ok(id.id)
    }

    /// Sets `subject`'s compatibility to [`COMPATIBILITY`] (`PUT /config/{subject}`), once per
    /// subject for the life of this client and its clones. Idempotent in the registry, and
    /// accepted before the subject's first version exists (Confluent and Apicurio both), so
    /// the very next registration is already checked.
    pub async fn enforce_compatibility(&self, subject: &str) -> Result<(), RegistryError> {
        if self.compatibility_set.read().await.contains(subject) {
            return Ok(());
        }
        let url = format!("{}/config/{}", self.base_url, subject);
        let response = self
            .http
            .put(&url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .json(&serde_json::json!({ "compatibility": COMPATIBILITY }))
            .send()
            .await
            .map_err(|e| RegistryError::Unavailable(format!("PUT {url}: {e}")))?;
        let config: ConfigResponse = Self::read_json(response, &url).await?;
        if config.compatibility != COMPATIBILITY {
            return Err(RegistryError::Refused(format!(
                "PUT {url} left the compatibility at {}",
                config.compatibility
            )));
        }
        self.compatibility_set
            .write()
            .await
            .insert(subject.to_owned());
        Ok(())
    }

    /// The schema registered under `id`, fetched once and then served from the cache.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(schema) = self.by_id.read().await.get(&id) {
            return Ok(schema.clone());
        }
        let url = format!("{}/schemas/ids/{}", self.base_url, id);
        let response = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .send()
            .await
            .map_err(|e| RegistryError::Unavailable(format!("GET {url}: {e}")))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(RegistryError::UnknownId(id));
        }
        let body: SchemaResponse = Self::read_json(response, &url).await?;
        let schema = Schema::parse_str(&body.schema)
            .map_err(|e| RegistryError::Refused(format!("schema {id} does not parse: {e}")))?;
        let schema = Arc::new(schema);
        self.by_id.write().await.insert(id, schema.clone());
        Ok(schema)
    }

    async fn read_json<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
        url: &str,
    ) -> Result<T, RegistryError> {
        let status = response.status();
        if status.is_server_error() {
            return Err(RegistryError::Unavailable(format!(
                "{url} answered {status}"
            )));
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(RegistryError::Refused(format!(
                "{url} answered {status}: {text}"
            )));
        }
        response
            .json()
            .await
            .map_err(|e| RegistryError::Refused(format!("{url}: unexpected body: {e}")))
    }
}
