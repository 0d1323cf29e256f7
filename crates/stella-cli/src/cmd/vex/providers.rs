//! `stella vex providers configure|show|run|status`: a provider's
//! configuration on a Stella server (`GET|PUT /excititor/providers/{id}/config`),
//! uploading files into artifact fields first (`POST …/artifacts`); runs
//! (`POST …/run`) and run status (`GET …/status`). The server's
//! validator decides; its errors are printed one per line with their JSON
//! path, code and hint, and exit 2.

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use crate::cli::{ServiceClientArgs, TextOrJson, VexConfigureArgs, VexShowArgs};
use crate::client::{ApiClient, ProblemError};
use crate::exit::Outcome;

/// One provider's routes on the server, through the shared client.
struct Api {
    client: ApiClient,
    /// `/excititor/providers/<provider>`.
    path: String,
}

impl Api {
    fn new(service: &ServiceClientArgs, provider: &str) -> anyhow::Result<Api> {
        let client = ApiClient::authenticated(service)?;
        let path = format!(
            "/excititor/providers/{}",
            url::form_urlencoded::byte_serialize(provider.as_bytes()).collect::<String>()
        );
        Ok(Api { client, path })
    }

    /// `<server>/excititor/providers/<provider><rest>`.
    fn url(&self, rest: &str) -> String {
        self.client.url(&format!("{}{rest}", self.path))
    }

    /// Sends what `build` makes; a provider-configuration problem's
    /// field errors are printed one per line (path, code, message, hint)
    /// before the error is returned.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<Value> {
        match self.client.send(build).await {
            Ok(answer) => answer
                .json()
                .with_context(|| format!("{what}: unexpected answer")),
            Err(e) => {
                if let Some(problem) = e.downcast_ref::<ProblemError>()
                    && problem.code.starts_with("PROVIDER_CONFIG_")
                {
                    for e in &problem.errors {
                        eprintln!(
                            "{}\t{}: {} (hint: {})",
                            e["path"].as_str().unwrap_or("-"),
                            e["code"].as_str().unwrap_or("-"),
                            e["message"].as_str().unwrap_or("-"),
                            e["hint"].as_str().unwrap_or("-")
                        );
                    }
                }
                Err(e)
            }
        }
    }

    async fn upload(&self, field: &str, path: &std::path::Path) -> anyhow::Result<String> {
        let bytes = crate::cmd::read_capped(path, 16 * 1024 * 1024)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mime = if field == "cosignKeys" {
            "application/x-pem-file"
        } else {
            "application/json"
        };
        let boundary = format!("stella-{:016x}", fastrand_u64());
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{field}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let url = self.url("/artifacts");
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let meta = self
            .send(
                |http| {
                    http.post(&url)
                        .header(reqwest::header::CONTENT_TYPE, &content_type)
                        .body(body.clone())
                },
                &format!("uploading {}", path.display()),
            )
            .await?;
        meta["artifactId"]
            .as_str()
            .map(str::to_string)
            .context("the upload answer has no artifactId")
    }
}

fn fastrand_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

fn split_pair<'a>(s: &'a str, flag: &str, example: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => bail!("{flag} {s:?}: expected {example}"),
    }
}

pub async fn configure(
    args: VexConfigureArgs,
    service: &ServiceClientArgs,
) -> anyhow::Result<Outcome> {
    let api = Api::new(service, &args.provider)?;
    let current = api
        .send(
            |http| http.get(api.url("/config")),
            "reading the configuration",
        )
        .await?;
    let shape_of = |field: &str| -> Option<String> {
        current["fields"]
            .as_array()?
            .iter()
            .find(|f| f["name"] == field)?["shape"]
            .as_str()
            .map(str::to_string)
    };
    let mut values = Map::new();
    if !args.images.is_empty() {
        values.insert(
            "imageSubscriptions".into(),
            Value::from(args.images.clone()),
        );
    }
    for s in &args.set {
        let (k, v) = split_pair(s, "--set", "FIELD=VALUE")?;
        values.insert(k.to_string(), Value::String(v.to_string()));
    }
    for u in &args.upload_artifacts {
        let (field, path) = split_pair(u, "--upload-artifact", "FIELD=@PATH")?;
        let Some(path) = path.strip_prefix('@') else {
            bail!("--upload-artifact {u:?}: expected FIELD=@PATH");
        };
        let shape = shape_of(field).with_context(|| {
            format!(
                "--upload-artifact: {field} is not a field of {}",
                args.provider
            )
        })?;
        let id = if args.validate_only {
            uuid_placeholder()
        } else {
            api.upload(field, std::path::Path::new(path)).await?
        };
        if shape == "list<artifactRef>" {
            let mut list = match values.get(field) {
                Some(Value::Array(a)) => a.clone(),
                _ => current["values"][field]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            };
            list.push(Value::String(id));
            values.insert(field.to_string(), Value::Array(list));
        } else if shape == "artifactRef" {
            values.insert(field.to_string(), Value::String(id));
        } else {
            bail!("--upload-artifact: {field} is a {shape} field, not an artifact field");
        }
    }
    let body = serde_json::json!({ "values": values, "clearKeys": args.clear_artifacts });
    let url = api.url(if args.validate_only {
        "/config?validateOnly=true"
    } else {
        "/config"
    });
    let body = serde_json::to_vec(&body)?;
    let saved = api
        .send(
            |http| {
                http.put(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            },
            "saving the configuration",
        )
        .await?;
    match args.output {
        TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&saved)?),
        TextOrJson::Text => println!(
            "{} {}: {}",
            args.provider,
            if args.validate_only {
                "configuration is valid"
            } else {
                "configuration saved"
            },
            if saved["ready"].as_bool() == Some(true) {
                "ready"
            } else {
                "not ready"
            }
        ),
    }
    if args.list_artifacts {
        let listing = api
            .send(
                |http| http.get(api.url("/artifacts?limit=500")),
                "listing artifacts",
            )
            .await?;
        match args.output {
            TextOrJson::Json => println!("{}", listing["items"]),
            TextOrJson::Text => {
                for item in listing["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\t{}",
                        item["artifactId"].as_str().unwrap_or("-"),
                        item["mimeType"].as_str().unwrap_or("-"),
                        item["sizeBytes"]
                    );
                }
            }
        }
    }
    Ok(Outcome::Success)
}

/// Stands in for an upload under --validate-only (shape checks only).
fn uuid_placeholder() -> String {
    "00000000-0000-7000-8000-000000000000".to_string()
}

pub async fn show(args: VexShowArgs, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    let api = Api::new(service, &args.provider)?;
    let config = api
        .send(
            |http| http.get(api.url("/config")),
            "reading the configuration",
        )
        .await?;
    match args.output {
        TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&config)?),
        TextOrJson::Text => {
            println!("FIELD\tSHAPE\tREQUIRED\tVALUE");
            for f in config["fields"].as_array().into_iter().flatten() {
                let name = f["name"].as_str().unwrap_or("-");
                let value = match &config["values"][name] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                println!(
                    "{name}\t{}\t{}\t{value}",
                    f["shape"].as_str().unwrap_or("-"),
                    f["required"]
                );
            }
            let ready = config["ready"].as_bool() == Some(true);
            println!("ready: {ready}");
            for i in config["issues"].as_array().into_iter().flatten() {
                println!(
                    "  {} {}: {} (hint: {})",
                    i["path"].as_str().unwrap_or("-"),
                    i["code"].as_str().unwrap_or("-"),
                    i["message"].as_str().unwrap_or("-"),
                    i["hint"].as_str().unwrap_or("-")
                );
            }
        }
    }
    Ok(Outcome::Success)
}

pub async fn run(args: VexShowArgs, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    let api = Api::new(service, &args.provider)?;
    let summary = api
        .send(|http| http.post(api.url("/run")), "running the provider")
        .await?;
    match args.output {
        TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        TextOrJson::Text => {
            for i in summary["images"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{}",
                    i["image"].as_str().unwrap_or("-"),
                    i["result"].as_str().unwrap_or("-"),
                    i["counts"],
                    i["reason"].as_str().unwrap_or("")
                );
            }
            println!(
                "{}: {} {} {}",
                args.provider,
                summary["result"].as_str().unwrap_or("-"),
                summary["counts"],
                summary["reason"].as_str().unwrap_or("")
            );
        }
    }
    Ok(if summary["result"] == "succeeded" {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

pub async fn status(args: VexShowArgs, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    let api = Api::new(service, &args.provider)?;
    let status = api
        .send(
            |http| http.get(api.url("/status")),
            "reading the run status",
        )
        .await?;
    match args.output {
        TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        TextOrJson::Text => {
            println!("IMAGE\tRESULT\tSTARTED\tFINISHED\tCOUNTS\tREASON");
            for r in status["runs"].as_array().into_iter().flatten() {
                let image = r["image"].as_str().unwrap_or("");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    if image.is_empty() { "(run)" } else { image },
                    r["result"].as_str().unwrap_or("-"),
                    r["startedAt"].as_str().unwrap_or("-"),
                    r["finishedAt"].as_str().unwrap_or("-"),
                    r["counts"],
                    r["reason"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(Outcome::Success)
}
